#!/usr/bin/env bash
# tests/e2e/test_akv_creds.sh — the key vault provider's token sources
# against the local test double (tests/vault/vault_server.py), each moving an
# environment's blobs to a vault key and back with `run --env`: workload
# identity (a federated token file, rotated mid-run), a client certificate
# (PEM, and PKCS#12 with a password), the Azure CLI (a stub `az` on PATH;
# logged out; bad output; no az); the chain's order and --akv-credential /
# RENC_AKV_CREDENTIAL; an authority with a trailing slash; and no secret,
# token, assertion, key or password in any output or file.
source "$(dirname "$0")/lib.sh"
source "$RENC_TESTS_DIR/vault/vaultlib.sh"
HERE=$RENC_TESTS_DIR/e2e/akv_creds
SUBJECT=system:serviceaccount:prod:reencrypt

mkdir -p "$WORK/cert" "$WORK/wi" "$WORK/bin" "$WORK/nobin" "$WORK/logs"
(umask 077 && python3 -c 'import secrets, sys; sys.stdout.write(secrets.token_urlsafe(18))' \
   >"$WORK/cert/password") || fail "a password"
python3 "$HERE/make_cert.py" "$WORK/cert" "$WORK/cert/password" || fail "the client certificate"
# One application, renc-test, with three credentials: its secret, a
# certificate, and a federated identity credential for the service account.
vault_start "$WORK/vault" --client-cert "renc-test=$WORK/cert/app.crt" \
  --federated "renc-test=$SUBJECT" || { fail "the vault server did not start"; finish; }
export RENC_CA_FILE=$VAULT_CA
SECRET_FILE=$AZURE_CLIENT_SECRET_FILE
vault_create_key cmk RSA 2048 >"$WORK/kid" || fail "create cmk"
CMK="akv:$VAULT_URL/keys/cmk"
V1="akv:$(cat "$WORK/kid")"

# No managed identity here: the metadata endpoint is a port nothing listens on
# (connection refused at once), so the chain passes on from it.
DEAD_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export RENC_IMDS_ENDPOINT=http://127.0.0.1:$DEAD_PORT
unset IDENTITY_ENDPOINT IDENTITY_HEADER AZURE_CLIENT_SECRET RENC_AKV_CREDENTIAL
export PATH="$WORK/nobin:$PATH"
cp "$HERE/az_stub.py" "$WORK/bin/az"
chmod 755 "$WORK/bin/az"
export AZ_STUB_LOG=$WORK/az.args AZ_STUB_URL=$VAULT_URL AZ_STUB_CA=$VAULT_CA \
  AZ_STUB_CLIENT=renc-test AZ_STUB_SECRET_FILE=$SECRET_FILE

# under_vault_key: prod's blobs are all under the vault key (1), or none (0).
under_vault_key() {
  local refs
  refs=$(slot_refs "$STATE/data/prod/blobs")
  if [ "$1" = 1 ]; then [ "$refs" = "$V1 20" ]; else [[ $refs != *"$V1"* ]]; fi
}

# keep: the last run's out and err go to $WORK/logs for the leak checks.
N=0
keep() {
  N=$((N + 1))
  cp "$WORK/out" "$WORK/logs/$N.out"
  cp "$WORK/err" "$WORK/logs/$N.err"
}

# creds KIND: the environment of one credential only.
creds() {
  unset AZURE_CLIENT_SECRET_FILE AZURE_CLIENT_CERTIFICATE_PATH \
    AZURE_CLIENT_CERTIFICATE_PASSWORD AZURE_FEDERATED_TOKEN_FILE
  export AZURE_CLIENT_ID=renc-test
  case $1 in
    secret) export AZURE_CLIENT_SECRET_FILE=$SECRET_FILE ;;
    pem) export AZURE_CLIENT_CERTIFICATE_PATH=$WORK/cert/app.pem ;;
    p12) export AZURE_CLIENT_CERTIFICATE_PATH=$WORK/cert/app.p12
         export AZURE_CLIENT_CERTIFICATE_PASSWORD=$(cat "$WORK/cert/password") ;;
    workload) export AZURE_FEDERATED_TOKEN_FILE=$WORK/wi/token ;;
    none) unset AZURE_CLIENT_ID ;;
  esac
}

# roundtrip DESC GRANT: prod's blobs to the vault key and back to the local
# key with `run --env`, every token from grant GRANT of the double (its
# count grows, no other grant's does), and the blobs open afterwards.
roundtrip() {
  local desc=$1 grant=$2 g0 others0 kinds="client_secret certificate federated" k
  g0=$(vault_grants_field "$grant")
  others0=$(for k in $kinds; do [ "$k" = "$grant" ] || vault_grants_field "$k"; done)
  expect_ok renc env set-policy prod --cmk "$CMK"; keep
  expect_ok renc run --env prod --progress=none; keep
  expect_out "20 blobs re-encrypted" "prod is encrypted" "20 wraps"
  check "$desc: every blob of prod is under the vault key" under_vault_key 1
  expect_ok renc env set-policy prod --byok local:byok1; keep
  expect_ok renc run --env prod --progress=none; keep
  expect_out "20 blobs re-encrypted" "20 unwraps"
  check "$desc: every blob of prod is back under the local key" under_vault_key 0
  check "$desc: the tokens came from the $grant grant" \
    [ "$(vault_grants_field "$grant")" -gt "$g0" ]
  check "$desc: and from no other grant" \
    [ "$(for k in $kinds; do [ "$k" = "$grant" ] || vault_grants_field "$k"; done)" = "$others0" ]
  expect_ok renc verify --env prod --progress=none; keep
  expect_out "20 blobs verified" "0 failed"
}

mkdir -p "$WORK/in"
for i in $(seq -w 1 20); do mkdata "$WORK/in/f$i" $((900 + 131 * 10#$i)); done
expect_ok renc keys create byok1
expect_ok renc env create prod
expect_ok renc env set-policy prod --byok local:byok1
expect_ok renc put --env prod "$WORK/in"

# ---- workload identity ----------------------------------------------------------
creds workload
JTI_A=$(vault_federated_token "$WORK/wi/token" renc-test) || fail "a federated token"
cp "$WORK/wi/token" "$WORK/wi/token.A"
roundtrip "workload identity" federated

# A relative link, as a projected volume has (TOKEN -> ..data/TOKEN).
mkdir -p "$WORK/wi/..data"
cp "$WORK/wi/token" "$WORK/wi/..data/token"
ln -s ..data/token "$WORK/wi/link"
AZURE_FEDERATED_TOKEN_FILE=$WORK/wi/link expect_ok renc keys versions "$CMK"; keep
AZURE_FEDERATED_TOKEN_FILE=$WORK/wi expect_exit 1 renc keys versions "$CMK"; keep
expect_msg "workload identity" "federated token file" "not a regular file" "no token for the key vault"
: >"$WORK/wi/empty"
AZURE_FEDERATED_TOKEN_FILE=$WORK/wi/empty expect_exit 1 renc keys versions "$CMK"; keep
expect_msg "federated token file" "no token for the key vault"

# Rotation in the middle of a run: the run (paced at 3 wraps a second, so
# that most of its 20 are still to come) is stopped with SIGSTOP after its
# fifth wrap; token A is revoked at the double (it now fails as an expired
# token does), token B replaces the file, the vault forgets every access
# token; the resumed run's next token request must read the file again.
# Waits are on the double's counters, not on time (up to 120 s).
vault_admin POST /stats/reset >/dev/null
expect_ok renc env set-policy prod --cmk "$CMK"; keep
fed0=$(vault_grants_field federated)
renc run --env prod --akv-rate 30 --progress=none >"$WORK/rot.out" 2>"$WORK/rot.err" &
runpid=$!
for ((i = 0; i < 1200; i++)); do
  [ "$(vault_stats_field wrapkey)" -ge 5 ] && break
  kill -0 $runpid 2>/dev/null || break
  sleep 0.1
done
kill -STOP $runpid
wraps_at_stop=$(vault_stats_field wrapkey)
vault_admin POST /federated/revoke "{\"jti\":\"$JTI_A\"}" >/dev/null
vault_federated_token "$WORK/wi/token" renc-test >"$WORK/wi/jti.B" || fail "token B"
vault_admin POST /tokens/revoke >/dev/null
kill -CONT $runpid
wait $runpid
RC=$?
cp "$WORK/rot.out" "$WORK/out"; cp "$WORK/rot.err" "$WORK/err"; keep
check "the run was stopped midway (after $wraps_at_stop of 20 wraps)" \
  [ "$wraps_at_stop" -ge 5 -a "$wraps_at_stop" -lt 20 ]
check "the run with a rotated federated token file succeeds" [ "$RC" -eq 0 ]
expect_out "prod is encrypted"
check "a second federated token was asked for after the rotation" \
  [ "$(vault_grants_field federated)" -ge $((fed0 + 2)) ]
check "the vault refused the old access tokens (401) after the rotation" \
  [ "$(vault_stats_field unauthorized)" -ge 1 ]
# The revoked token A is refused: a run that kept A would have failed.
AZURE_FEDERATED_TOKEN_FILE=$WORK/wi/token.A expect_exit 1 renc keys versions "$CMK"; keep
expect_msg "token request" "refused" "invalid_client" "AADSTS700024"
expect_ok renc env set-policy prod --byok local:byok1; keep
expect_ok renc run --env prod --progress=none; keep

# ---- client certificate: PEM, then PKCS#12 with a password -------------------
creds pem
roundtrip "client certificate (PEM)" certificate
creds p12
roundtrip "client certificate (PKCS#12)" certificate
AZURE_CLIENT_CERTIFICATE_PASSWORD=wrong expect_exit 1 renc keys versions "$CMK"; keep
expect_msg "client certificate" "PKCS#12" "no token for the key vault"
AZURE_CLIENT_CERTIFICATE_PATH=$WORK/cert/app.crt expect_exit 1 renc keys versions "$CMK"; keep
expect_msg "client certificate" "no token for the key vault"

# ---- the Azure CLI ----------------------------------------------------------
creds none
export PATH="$WORK/bin:$PATH" AZ_STUB_MODE=new
roundtrip "Azure CLI" client_secret
check "az was asked with --resource, --output json and the vault's tenant" \
  grep -q -- "^account get-access-token --resource https://127.0.0.1 --output json --tenant $AZURE_TENANT_ID\$" "$AZ_STUB_LOG"
AZ_STUB_MODE=old expect_ok renc keys versions "$CMK"; keep
check "the older CLI output (expiresOn in local time only) works" [ "$RC" -eq 0 ]
AZ_STUB_MODE=logged-out expect_exit 1 renc keys versions "$CMK"; keep
expect_msg "Azure CLI" "az login" "no token for the key vault"
AZ_STUB_MODE=garbage expect_exit 1 renc keys versions "$CMK"; keep
expect_msg "Azure CLI" "unexpected output"
PATH=$WORK/nobin expect_exit 1 "$RENC_BIN" keys versions "$CMK" --state "$STATE"; keep
expect_msg "managed identity" "no answer" "Azure CLI" "az not found on PATH" \
  "no token for the key vault"
PATH=$WORK/nobin expect_exit 1 "$RENC_BIN" keys versions "$CMK" --state "$STATE" \
  --akv-credential cli; keep
expect_msg "--akv-credential" "az not found on PATH"

# ---- the chain's order, and forcing one source ----------------------------------
creds secret
export AZURE_FEDERATED_TOKEN_FILE=$WORK/wi/token
s0=$(vault_grants_field client_secret)
f0=$(vault_grants_field federated)
expect_ok renc keys versions "$CMK"; keep
check "with a secret and a federated token file, the secret is used" \
  [ "$(vault_grants_field client_secret)" -eq $((s0 + 1)) -a "$(vault_grants_field federated)" -eq "$f0" ]
expect_ok renc keys versions "$CMK" --akv-credential workload; keep
check "--akv-credential workload uses the workload identity" \
  [ "$(vault_grants_field federated)" -eq $((f0 + 1)) -a "$(vault_grants_field client_secret)" -eq $((s0 + 1)) ]
RENC_AKV_CREDENTIAL=workload expect_ok renc keys versions "$CMK"; keep
check "RENC_AKV_CREDENTIAL=workload uses the workload identity" \
  [ "$(vault_grants_field federated)" -eq $((f0 + 2)) ]
expect_exit 1 renc keys versions "$CMK" --akv-credential certificate; keep
expect_msg "--akv-credential" "client certificate" "AZURE_CLIENT_CERTIFICATE_PATH"
expect_exit 2 renc keys versions "$CMK" --akv-credential kerberos; keep
expect_msg "--akv-credential" "kerberos" "secret, certificate, workload, managed-identity, cli"
RENC_AKV_CREDENTIAL=bogus expect_exit 2 renc keys versions "$CMK"; keep
expect_msg "RENC_AKV_CREDENTIAL" "bogus"
unset AZURE_FEDERATED_TOKEN_FILE

# ---- an authority with a trailing slash (as the Kubernetes webhook sets it) ----
AZURE_AUTHORITY_HOST=$VAULT_URL/ expect_ok renc keys versions "$CMK"; keep
check "the token request went to /TENANT/oauth2/v2.0/token" \
  grep -q " POST /$AZURE_TENANT_ID/oauth2/v2.0/token 200 " "$VAULT_LOG"
check "no request path with '//' in the double's log" bash -c '! grep -q " //" "$1"' _ "$VAULT_LOG"

# ---- nothing secret in any output or file -----------------------------------
leak_free() {
  local what=$1 needle=$2
  [ -n "$needle" ] || return 1
  ! grep -rqF -- "$needle" "$WORK/logs" "$STATE" "$VAULT_LOG" "$AZ_STUB_LOG" 2>/dev/null
}
check "the client secret appears in no output or file" leak_free secret "$(cat "$SECRET_FILE")"
check "the certificate password appears in no output or file" \
  leak_free password "$(cat "$WORK/cert/password")"
check "the private key appears in no output or file" leak_free key "$(cat "$WORK/cert/key.b64")"
check "federated token A appears in no output or file" leak_free tokenA "$(cut -d. -f3 "$WORK/wi/token.A")"
check "federated token B appears in no output or file" leak_free tokenB "$(cut -d. -f3 "$WORK/wi/token")"
check "no access token (a JWT) appears in any output" \
  bash -c '! grep -rqE "eyJ[A-Za-z0-9_-]{10,}\.eyJ" "$1" "$2"' _ "$WORK/logs" "$STATE"

finish
