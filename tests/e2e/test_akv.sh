#!/usr/bin/env bash
# tests/e2e/test_akv.sh — the akv key provider against the local key vault
# test double (tests/vault/vault_server.py): BYOK to a vault CMK, rotation to
# a new vault key version by header rewrap, restore-check across vault keys,
# revocation in the middle of a run and its resume, the attribute semantics
# (disabled, expired, key_ops), tokens (client credentials, both managed
# identities, the challenge's domain check), TLS verification, and secrets.
# The 10,000-blob run under throttling and faults is test_akv_scale.sh.
source "$(dirname "$0")/lib.sh"
source "$RENC_TESTS_DIR/vault/vaultlib.sh"

vault_start "$WORK/vault" || { fail "the vault server did not start"; finish; }
export RENC_CA_FILE=$VAULT_CA
CMK="akv:$VAULT_URL/keys/cmk"
vault_create_key cmk RSA 2048 >"$WORK/kid1" || fail "create cmk"
V1="akv:$(cat "$WORK/kid1")"

# versions_in ENV: "REF COUNT" per key version the slots of ENV's blobs name.
versions_in() {
  slot_refs "$STATE/data/$1/blobs"
}

# plain_ok ENV DIR [N]: every blob of ENV (or the first N) decrypts to the
# file of that name in DIR.
plain_ok() {
  local env=$1 dir=$2 n=${3:-1000000} b bad=0
  while read -r b; do
    renc decrypt "$b" "$WORK/plain.out" 2>"$WORK/plain.err" || { bad=1; cat "$WORK/plain.err" >&2; }
    cmp -s "$WORK/plain.out" "$dir/$(basename "$b")" || { bad=1; echo "    differs: $b" >&2; }
    rm -f "$WORK/plain.out"
  done < <(find "$STATE/data/$env/blobs" -type f ! -name '.*' | sort | head -n "$n")
  [ $bad -eq 0 ]
}

# stopped_midway WHAT OLD NEW: after a run of mid's 300 blobs stopped by
# WHAT, some blobs are under NEW and not all, every other one is under OLD
# (wholly old or wholly new), and no temporary is left.
stopped_midway() {
  local moved kept
  moved=$(versions_in mid | awk -v v="$3" '$1 == v {print $2}')
  kept=$(versions_in mid | awk -v v="$2" '$1 == v {print $2}')
  check "some blobs moved before $1, not all ($moved moved)" \
    [ "${moved:-0}" -gt 0 -a "${moved:-0}" -lt 300 ]
  check "after $1 every blob is wholly old or wholly new ($kept + $moved = 300)" \
    [ $((${kept:-0} + ${moved:-0})) -eq 300 ]
  check "no temporaries left in mid after $1" no_temporaries "$STATE/data/mid/blobs"
}

# ---- BYOK (local keyring) to a vault CMK --------------------------------------
mkdir -p "$WORK/in"
for i in $(seq -w 1 40); do mkdata "$WORK/in/f$i" $((1000 + 97 * 10#$i)); done
expect_ok renc keys create byok1
expect_ok renc env create prod
expect_ok renc env set-policy prod --byok local:byok1
expect_ok renc put --env prod "$WORK/in"
expect_ok renc env set-policy prod --cmk "$CMK"
expect_out "current version $V1"
expect_ok renc run --env prod
expect_out "40 blobs re-encrypted" "rewrapped by rewriting only their header" "key vault:" \
  "40 wraps" "prod is encrypted"
check "every blob of prod is under $V1" [ "$(versions_in prod)" = "$V1 40" ]
check "prod's blobs open to their plaintext through the vault" plain_ok prod "$WORK/in"
blob=$STATE/data/prod/blobs/in/f01
check "the slot stores the versioned kid and alg 2 (RSA-OAEP-256)" \
  [ "$(inspect_field "$blob" '.slots[0] | "\(.ref) \(.alg)"')" = "$V1 2" ]

# A state that uses only vault keys needs no local keyring.
VSTATE=$WORK/vault-only
expect_ok "$RENC_BIN" env create cloud --state "$VSTATE"
rm -rf "$VSTATE/keyring"
expect_ok "$RENC_BIN" env set-policy cloud --cmk "$CMK" --state "$VSTATE"
expect_ok "$RENC_BIN" put --env cloud "$WORK/in" --state "$VSTATE"
expect_ok "$RENC_BIN" verify --env cloud --progress=none --state "$VSTATE"
expect_out "40 blobs verified" "0 failed"
expect_ok "$RENC_BIN" decrypt "$VSTATE/data/cloud/blobs/in/f07" "$WORK/f07" --state "$VSTATE"
expect_same "a vault-only state decrypts" "$WORK/in/f07" "$WORK/f07"
check "no local keyring was made" [ ! -e "$VSTATE/keyring" ]

# ---- rotation to a new vault key version, by header rewrap ------------------
vault_admin POST /stats/reset >/dev/null
vault_create_key cmk RSA 2048 >"$WORK/kid2" || fail "rotate cmk"
V2="akv:$(cat "$WORK/kid2")"
expect_ok renc run --env prod
expect_out "40 blobs re-encrypted" "40 of them rewrapped by rewriting only their header" \
  "40 unwraps, 40 wraps"
check "every blob of prod is under $V2" [ "$(versions_in prod)" = "$V2 40" ]
check "the vault unwrapped each distinct DEK once" [ "$(vault_stats_field unwrapkey)" = 40 ]
check "prod still opens to its plaintext" plain_ok prod "$WORK/in"
expect_ok renc keys versions "$CMK"
expect_out "$V1" "$V2"
check "keys versions: the old version is no longer needed" \
  grep -q "^$V1 .*enabled .* no" "$WORK/out"

# ---- restore-check across environments on vault keys ------------------------
expect_ok renc backup create --env prod
backup=$(ls "$STATE/data/prod/backups/"*.renc | head -n 1)
expect_ok renc env create dr
expect_ok renc env set-policy dr --cmk "$CMK"
expect_ok renc restore-check "$backup" --target dr
expect_out "allowed" "the same customer key" "valid" "verdict     yes"
vault_create_key other RSA 3072 >/dev/null || fail "create other"
expect_ok renc env create lab
expect_ok renc env set-policy lab --cmk "akv:$VAULT_URL/keys/other"
expect_exit 1 renc restore-check "$backup" --target lab
expect_out "refused" "not under lab's cmk key" "verdict     no"
expect_ok renc restore "$backup" --target dr
check "the restore into dr opens through the vault (10 of 40 decrypted)" plain_ok dr "$WORK/in" 10
expect_ok renc verify --env dr

# ---- revocation in the middle of a run, and the resume ----------------------
mkdir -p "$WORK/in2"
for i in $(seq -w 1 300); do mkdata "$WORK/in2/g$i" 700; done
expect_ok renc env create mid
expect_ok renc env set-policy mid --cmk "$CMK"
expect_ok renc put --env mid "$WORK/in2"
before=$(tree_hashes "$STATE/data/mid")
vault_create_key cmk RSA 2048 >"$WORK/kid3" || fail "rotate cmk again"
V3="akv:$(cat "$WORK/kid3")"
# The double withdraws access when it has answered the run's 20th wrap: an
# event of the run, not a moment, so a loaded machine changes nothing.
vault_admin POST /stats/reset >/dev/null
vault_admin POST /triggers '{"after":"wrapkey","count":20,"then":{"path":"/access","body":{"client":"renc-test","permissions":[]}}}' >/dev/null
expect_exit 1 renc run --env mid --progress=none
check "the revocation came after the run's 20th wrap" [ "$(vault_stats_field wrapkey)" -ge 20 ]
expect_msg "key access revoked" "environment mid locked" "revoked (access withdrawn)"
expect_out "stopped early"
stopped_midway "the revocation" "$V2" "$V3"
expect_exit 1 renc run --env mid
expect_msg "environment mid is locked" "key $CMK/" "keys restore $CMK"
expect_exit 1 renc keys restore "$CMK"
expect_msg "key access revoked"
vault_admin POST /access '{"client":"renc-test","permissions":["get","list","wrapKey","unwrapKey"]}' >/dev/null
expect_ok renc keys restore "$CMK"
expect_out "unlocked" "mid"
expect_ok renc run --env mid
expect_out "attempt 2" "mid is encrypted"
check "after the resume every blob of mid is under $V3" [ "$(versions_in mid)" = "$V3 300" ]
check "mid still opens to its plaintext (20 of 300 decrypted; verify opens all)" plain_ok mid "$WORK/in2" 20
expect_ok renc verify --env mid

# ---- a vault that keeps throttling stops the run; the resume completes -------
# From the run's 20th wrap on, the server admits 1 request per 10 s (the
# window is already full by then); each request may wait out 429s for 3 s
# only, so the run gives up on the 429s long before the window frees.
vault_create_key cmk RSA 2048 >"$WORK/kid4" || fail "rotate cmk a third time"
V4="akv:$(cat "$WORK/kid4")"
vault_admin POST /triggers '{"after":"wrapkey","count":20,"then":{"path":"/throttle","body":{"limit":1,"window":10,"retry_after":1}}}' >/dev/null
expect_exit 1 renc run --env mid --akv-throttle-wait 3 --progress=none
expect_msg "kept throttling requests (429)" "throttled (429)" "giving up"
expect_out "stopped early" "lowered"
stopped_midway "the throttling" "$V3" "$V4"
expect_exit 2 renc run --env mid --akv-throttle-wait 0
expect_msg "--akv-throttle-wait" "1..86400"
vault_admin POST /throttle '{"limit":0}' >/dev/null
expect_ok renc run --env mid
expect_out "attempt 2" "mid is encrypted"
check "after the resume every blob of mid is under $V4" [ "$(versions_in mid)" = "$V4 300" ]
cp "$WORK/kid4" "$WORK/kid3"

# ---- attribute semantics: disabled, expired, key_ops ------------------------
kid3=$(cat "$WORK/kid3")
vault_admin POST "/keys/cmk/${kid3##*/}/attributes" '{"enabled":false}' >/dev/null
expect_exit 1 renc decrypt "$STATE/data/mid/blobs/in2/g001" "$WORK/x"
expect_msg "g001" "key version is disabled"
check "no output from a refused decrypt" [ ! -e "$WORK/x" ]
vault_admin POST "/keys/cmk/${kid3##*/}/attributes" '{"enabled":true}' >/dev/null
expect_ok renc decrypt "$STATE/data/mid/blobs/in2/g001" "$WORK/x"
rm -f "$WORK/x"

past=$(($(date +%s) - 60))
vault_create_key expired RSA 2048 >"$WORK/kidx" || fail "create expired"
kidx=$(cat "$WORK/kidx")
mkdata "$WORK/e.in" 5000
expect_ok renc encrypt --env lab --key "akv:$VAULT_URL/keys/expired" "$WORK/e.in" "$WORK/e.renc"
vault_admin POST "/keys/expired/${kidx##*/}/attributes" "{\"exp\":$past}" >/dev/null
expect_exit 1 renc encrypt --env lab --key "akv:$VAULT_URL/keys/expired" "$WORK/e.in" "$WORK/e2.renc"
expect_msg "expired or not yet valid" "can unwrap but not wrap"
check "no output from a refused encrypt" [ ! -e "$WORK/e2.renc" ]
expect_ok renc decrypt "$WORK/e.renc" "$WORK/e.out"
expect_same "an expired key still unwraps existing data" "$WORK/e.in" "$WORK/e.out"

vault_admin POST /keys/nowrap '{"kty":"RSA","size":2048,"key_ops":["unwrapKey"]}' >/dev/null
expect_exit 1 renc encrypt --env lab --key "akv:$VAULT_URL/keys/nowrap" "$WORK/e.in" "$WORK/e3.renc"
expect_msg "does not permit this operation"
expect_exit 1 renc encrypt --env lab --key "akv:$VAULT_URL/keys/missing" "$WORK/e.in" "$WORK/e4.renc"
expect_msg "the key vault has no such key"

# A256KW with an oct-HSM key (Managed HSM).
vault_create_key octk oct-HSM 256 >/dev/null || fail "create oct key"
expect_ok renc encrypt --env lab --key "akv:$VAULT_URL/keys/octk" "$WORK/e.in" "$WORK/o.renc"
check "an oct-HSM key wraps with alg 4 (A256KW)" [ "$(inspect_field "$WORK/o.renc" '.slots[0].alg')" = 4 ]
expect_ok renc decrypt "$WORK/o.renc" "$WORK/o.out"
expect_same "A256KW round trip" "$WORK/e.in" "$WORK/o.out"

# ---- tokens: managed identities ---------------------------------------------
(
  unset AZURE_CLIENT_ID AZURE_CLIENT_SECRET_FILE
  export RENC_IMDS_ENDPOINT="http://127.0.0.1:$VAULT_HTTP_PORT"
  run renc decrypt "$WORK/e.renc" "$WORK/imds.out"
  [ "$RC" -eq 0 ] && same "$WORK/e.in" "$WORK/imds.out"
) && pass "a token from the VM metadata endpoint" || fail "a token from the VM metadata endpoint"
(
  unset AZURE_CLIENT_ID AZURE_CLIENT_SECRET_FILE
  export IDENTITY_ENDPOINT=$VAULT_IDENTITY_ENDPOINT IDENTITY_HEADER=$VAULT_IDENTITY_HEADER
  run renc decrypt "$WORK/e.renc" "$WORK/app.out"
  [ "$RC" -eq 0 ] && same "$WORK/e.in" "$WORK/app.out"
) && pass "a token from the App Service identity endpoint" || fail "a token from the App Service identity endpoint"
(
  unset AZURE_CLIENT_ID AZURE_CLIENT_SECRET_FILE
  export IDENTITY_ENDPOINT=$VAULT_IDENTITY_ENDPOINT IDENTITY_HEADER=wrong
  failed_before=$FAILED
  expect_exit 1 renc decrypt "$WORK/e.renc" "$WORK/app2.out"
  expect_msg "e.renc" "no token for the key vault"
  [ "$FAILED" -eq "$failed_before" ]
) || fail "a refused identity header"

# ---- credentials refused, secret file open to others, TLS -------------------
cp "$AZURE_CLIENT_SECRET_FILE" "$WORK/wrong.secret"
echo "not-the-secret" >"$WORK/wrong.secret"
chmod 600 "$WORK/wrong.secret"
AZURE_CLIENT_SECRET_FILE=$WORK/wrong.secret expect_exit 1 renc decrypt "$WORK/e.renc" "$WORK/w.out"
expect_msg "token request" "refused" "invalid_client" "AADSTS7000215" "no token for the key vault"
chmod 644 "$WORK/wrong.secret"
AZURE_CLIENT_SECRET_FILE=$WORK/wrong.secret expect_exit 1 renc decrypt "$WORK/e.renc" "$WORK/w.out"
expect_msg "insecure permissions"
RENC_CA_FILE= expect_exit 1 renc decrypt "$WORK/e.renc" "$WORK/t.out"
expect_msg "could not be reached"
check "no output without a trusted vault" [ ! -e "$WORK/t.out" ]

# A vault whose challenge names another domain's resource gets no token.
vault_start "$WORK/vault2" --resource https://vault.example.net || fail "second vault"
export RENC_CA_FILE=$VAULT_CA
vault_create_key k RSA 2048 >/dev/null
expect_exit 1 renc encrypt --env lab --key "akv:$VAULT_URL/keys/k" "$WORK/e.in" "$WORK/c.renc"
expect_msg "not its domain" "no token for the key vault"
check "the second vault issued no token" [ "$(vault_stats_field token)" = 0 ]

# ---- secrets: no token or client secret in any output or file ---------------
secret=$(cat "$WORK/vault/client.secret")
check "the client secret appears in no output, journal or catalog" \
  bash -c '! grep -rqF -- "$1" "$2" "$3"/*.out "$3"/*.err "$3"/err "$3"/out 2>/dev/null' _ \
  "$secret" "$STATE" "$WORK"

finish
