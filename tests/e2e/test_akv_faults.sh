#!/usr/bin/env bash
# tests/e2e/test_akv_faults.sh — the key vault as real deployments answer it,
# against the local test double (tests/vault/vault_server.py):
#   - a disabled (or expired) current version seals nothing new: run and
#     encrypt refuse before writing, naming the version, and blobs sealed
#     under it earlier are named by verify and by plan --check-keys;
#   - a key created as "rsak" is the key a ref spells "RSAK" (names are
#     case-blind in the service, which answers with the stored spelling), and
#     so is a ref with an explicit :443-free spelling of the same vault;
#   - a firewall (or private-link) denial stops the run with that cause and
#     locks nothing; a revocation still locks;
#   - a deleted key stops the run once, naming the key, instead of failing
#     every blob;
#   - an oct-HSM key that is not 256-bit AES is refused clearly;
#   - proxies: NO_PROXY is honoured (a CONNECT proxy counts the tunnels).
source "$(dirname "$0")/lib.sh"
source "$RENC_TESTS_DIR/vault/vaultlib.sh"

vault_start "$WORK/vault" || { fail "the vault server did not start"; finish; }
export RENC_CA_FILE=$VAULT_CA

# versions_in ENV: "REF COUNT" per key version the slots of ENV's blobs name.
versions_in() {
  slot_refs "$STATE/data/$1/blobs"
}

# env_field ENV FIELD: a field of `env show ENV --json`.
env_field() {
  "$RENC_BIN" env show "$1" --json --state "$STATE" >"$WORK/env.json" &&
    json_get "$WORK/env.json" "$2"
}

mkdir -p "$WORK/in"
for i in $(seq -w 1 60); do mkdata "$WORK/in/f$i" $((500 + 37 * 10#$i)); done

# ---- a disabled current version seals nothing new ---------------------------
vault_create_key cmk RSA 2048 >"$WORK/kid1" || fail "create cmk"
V1="akv:$(cat "$WORK/kid1")"
CMK="akv:$VAULT_URL/keys/cmk"
expect_ok renc env create prod
expect_ok renc put --env prod "$WORK/in"
expect_ok renc env set-policy prod --cmk "$CMK"
kid1=$(cat "$WORK/kid1")
vault_admin POST "/keys/cmk/${kid1##*/}/attributes" '{"enabled":false}' >/dev/null
vault_admin POST /stats/reset >/dev/null
before=$(tree_hashes "$STATE/data/prod")
expect_exit 1 renc run --env prod --progress=none
expect_msg "version $V1" "disabled" "nothing is sealed under it"
check "nothing of prod changed under a disabled target" \
  [ "$(tree_hashes "$STATE/data/prod")" = "$before" ]
check "the vault was asked to wrap nothing" [ "$(vault_stats_field wrapkey)" = 0 ]
check "a disabled target is not a revocation: prod is not locked" \
  [ "$(env_field prod .key_lock)" = null ]
mkdata "$WORK/one" 3000
expect_exit 1 renc encrypt --env prod --key "$CMK" "$WORK/one" "$WORK/one.renc"
expect_msg "disabled" "$V1"
check "no output from an encrypt under a disabled version" [ ! -e "$WORK/one.renc" ]
expect_exit 1 renc encrypt --env prod --key "$V1" "$WORK/one" "$WORK/one.renc"
expect_msg "disabled"
# Enabled again: the run moves prod; blobs sealed while it was enabled and
# then disabled are found by verify, each named with the version.
vault_admin POST "/keys/cmk/${kid1##*/}/attributes" '{"enabled":true}' >/dev/null
expect_ok renc run --env prod --progress=none
check "prod is under $V1" [ "$(versions_in prod)" = "$V1 60" ]
vault_admin POST "/keys/cmk/${kid1##*/}/attributes" '{"enabled":false}' >/dev/null
expect_exit 1 "$RENC_BIN" verify "$STATE/data/prod/blobs" --progress=none --state "$STATE" \
  --threads 1
expect_msg "f01" "key version is disabled" "$V1"
expect_out "60 failed"
expect_exit 1 renc plan --check-keys "$STATE/data/prod/blobs"
expect_out "$V1: key version is disabled" "warning: 60 blobs" "no slot that would open now: $V1"
expect_exit 1 renc plan --check-keys --json "$STATE/data/prod/blobs"
check "plan --json: the group does not open now, and says why" \
  [ "$(jq -r '"\(.groups[0].opens_now) \(.key_versions["'"$V1"'"])"' "$WORK/out")" = \
    "false key version is disabled" ]
vault_admin POST "/keys/cmk/${kid1##*/}/attributes" '{"enabled":true}' >/dev/null
expect_ok renc plan --check-keys "$STATE/data/prod/blobs"
expect_out "$V1: ok"

# An expired current version: the same refusal, before any blob is read.
vault_create_key old RSA 2048 >"$WORK/kidold" || fail "create old"
kidold=$(cat "$WORK/kidold")
expect_ok renc env create stale
expect_ok renc put --env stale "$WORK/in"
expect_ok renc env set-policy stale --cmk "akv:$VAULT_URL/keys/old"
vault_admin POST "/keys/old/${kidold##*/}/attributes" "{\"exp\":$(($(date +%s) - 60))}" >/dev/null
before=$(tree_hashes "$STATE/data/stale")
expect_exit 1 renc run --env stale --progress=none
expect_msg "version akv:$kidold" "expired or not yet valid" "nothing is sealed under it"
check "nothing of stale changed under an expired target" \
  [ "$(tree_hashes "$STATE/data/stale")" = "$before" ]

# ---- key names are case-blind; the service answers with the stored spelling --
vault_create_key rsak RSA 2048 >"$WORK/kidr" || fail "create rsak"
VR="akv:$(cat "$WORK/kidr")"
expect_ok renc env create spelled
expect_ok renc put --env spelled "$WORK/in"
expect_ok renc env set-policy spelled --cmk "akv:$VAULT_URL/keys/RSAK"
expect_ok renc run --env spelled --progress=none
expect_out "60 blobs re-encrypted"
check "the slots keep the spelling the vault answers with ($VR)" \
  [ "$(versions_in spelled)" = "$VR 60" ]
expect_ok renc run --env spelled --progress=none
expect_out "0 blobs re-encrypted" "60 skipped"
expect_ok renc keys versions "akv:$VAULT_URL/keys/RSAK"
expect_out "$VR"
expect_ok renc encrypt --env spelled --key "akv:$VAULT_URL/keys/Rsak" "$WORK/one" "$WORK/r.renc"
expect_ok renc decrypt "$WORK/r.renc" "$WORK/r.out"
expect_same "a case-changed key name round-trips" "$WORK/one" "$WORK/r.out"

# ---- keys versions follows every page --------------------------------------
for i in $(seq 1 29); do vault_create_key paged oct-HSM 256 >/dev/null || fail "version $i"; done
expect_ok renc keys versions "akv:$VAULT_URL/keys/paged"
check "keys versions lists all 29 versions (two pages of at most 25)" \
  [ "$(grep -c "^akv:$VAULT_URL/keys/paged/" "$WORK/out")" = 29 ]

# ---- a firewall denial stops the run and locks nothing ----------------------
vault_create_key cmk RSA 2048 >"$WORK/kid2" || fail "rotate cmk"
V2="akv:$(cat "$WORK/kid2")"
for deny in firewall private-link; do
  vault_admin POST /network "{\"deny\":\"$deny\"}" >/dev/null
  before=$(tree_hashes "$STATE/data/prod")
  expect_exit 1 renc run --env prod --progress=none
  expect_msg "network rule" "nothing is locked"
  check "a $deny denial changes no blob of prod" \
    [ "$(tree_hashes "$STATE/data/prod")" = "$before" ]
  check "a $deny denial does not lock prod" [ "$(env_field prod .key_lock)" = null ]
  vault_admin POST /network '{"deny":null}' >/dev/null
done
expect_ok renc run --env prod --progress=none
check "once the vault lets the machine in, prod moves to $V2" [ "$(versions_in prod)" = "$V2 60" ]

# ---- a deleted key stops the run once, naming the key ----------------------
vault_create_key gone RSA 2048 >"$WORK/kidg" || fail "create gone"
VG="akv:$(cat "$WORK/kidg")"
expect_ok renc env create doomed
expect_ok renc env set-policy doomed --cmk "akv:$VAULT_URL/keys/gone"
mkdir -p "$WORK/many"
for i in $(seq -w 1 200); do mkdata "$WORK/many/m$i" 300; done
expect_ok renc put --env doomed "$WORK/many"
expect_ok renc env set-policy doomed --cmk "$CMK"
vault_admin DELETE /keys/gone >/dev/null
expect_exit 1 renc run --env doomed --progress=none --threads 2
expect_msg "no such key" "$VG"
failed=$(grep -o '[0-9]* failed' "$WORK/out" | head -n 1 | cut -d' ' -f1)
check "the run stopped after the first few failures, not 200 ($failed failed)" \
  [ "${failed:-200}" -lt 20 ]
check "every blob of doomed is still under $VG" [ "$(versions_in doomed)" = "$VG 200" ]

# ---- an oct-HSM key must be 256-bit AES -------------------------------------
vault_create_key oct128 oct-HSM 128 >/dev/null || fail "create oct128"
expect_exit 1 renc encrypt --env prod --key "akv:$VAULT_URL/keys/oct128" "$WORK/one" "$WORK/o.renc"
expect_msg "key type does not fit" "256-bit"
check "no output from a refused oct-HSM 128 encrypt" [ ! -e "$WORK/o.renc" ]

# ---- proxies: NO_PROXY is honoured ----------------------------------------
# A second double, served under a name (https://px.vault.localhost:PORT;
# libcurl resolves *.localhost to loopback itself), behind a CONNECT proxy
# that logs each tunnel.  Only loopback addresses and the metadata endpoint
# bypass proxies on their own; a name goes through the proxy unless
# NO_PROXY says so.
vault_start "$WORK/vault2" --vault-host px.vault.localhost || fail "the second vault did not start"
LURL=$VAULT_URL
vault_create_key px RSA 2048 >/dev/null || fail "create px"
python3 "$RENC_TESTS_DIR/e2e/connect_proxy.py" "$WORK/proxy.port" "$WORK/proxy.log" $$ &
for i in $(seq 1 100); do [ -s "$WORK/proxy.port" ] && break; sleep 0.1; done
PROXY="http://127.0.0.1:$(cat "$WORK/proxy.port")"
export RENC_CA_FILE=$VAULT_CA
tunnels() { grep -c "CONNECT px.vault.localhost:$VAULT_PORT" "$WORK/proxy.log" 2>/dev/null || true; }
( unset NO_PROXY no_proxy
  export HTTPS_PROXY=$PROXY
  expect_ok renc encrypt --env prod --key "akv:$LURL/keys/px" "$WORK/one" "$WORK/p1.renc" ) ||
  fail "through the proxy"
t1=$(tunnels)
check "without NO_PROXY the vault is reached through the proxy ($t1 tunnels)" [ "${t1:-0}" -ge 1 ]
( export HTTPS_PROXY=$PROXY NO_PROXY=.vault.localhost
  expect_ok renc decrypt "$WORK/p1.renc" "$WORK/p1.out" ) || fail "NO_PROXY=.vault.localhost"
check "NO_PROXY=.vault.localhost: no tunnel through the proxy" [ "$(tunnels)" = "$t1" ]
( export HTTPS_PROXY=http://127.0.0.1:1 no_proxy='*'
  unset NO_PROXY
  expect_ok renc decrypt "$WORK/p1.renc" "$WORK/p2.out" ) || fail "no_proxy=*"
( export HTTPS_PROXY=http://127.0.0.1:1 NO_PROXY=other.example
  expect_exit 1 renc decrypt "$WORK/p1.renc" "$WORK/p3.out"
  expect_msg "could not be reached" ) || fail "a proxy that is down, for a host NO_PROXY does not name"
expect_same "the blob made through the proxy opens without it" "$WORK/one" "$WORK/p1.out"

# ---- a Managed HSM is not paced by the vault's table ------------------------
# The service's Managed HSM names are NAME.managedhsm.<cloud domain>; it does
# not throttle crypto operations, so the pacer's ceiling is 50,000 per 10 s
# there, against 3,600 for an RSA 2048 key in a vault (90% of 4,000).
expect_ok renc keys create local1
mkdir -p "$WORK/few" "$WORK/few2"
for i in 1 2 3; do
  expect_ok renc encrypt --env prod --key local:local1 "$WORK/one" "$WORK/few/x$i"
  cp "$WORK/few/x$i" "$WORK/few2/x$i"
done
( vault_start "$WORK/hsm" --vault-host hsm1.managedhsm.localhost || exit 1
  export RENC_CA_FILE=$VAULT_CA
  vault_create_key hk RSA-HSM 2048 >/dev/null || exit 1
  expect_ok renc run --to "akv:$VAULT_URL/keys/hk" --progress=none "$WORK/few"
  expect_out "paced at 50000 per 10 s" ) || fail "a Managed HSM's pace"
expect_ok renc run --to "akv:$LURL/keys/px" --progress=none "$WORK/few2"
expect_out "paced at 3600 per 10 s"

finish
