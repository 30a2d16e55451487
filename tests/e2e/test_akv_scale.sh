#!/usr/bin/env bash
# tests/e2e/test_akv_scale.sh — a 10,000-blob BYOK-to-vault run while the
# vault throttles (429, with Retry-After) and fails requests (503 every 97th,
# dropped connections, slow answers), with tokens that expire during the run:
# nothing is lost, every blob ends under the vault key, and every blob is
# verified afterwards through the vault.
# RENC_AKV_SCALE_BLOBS changes the count (default 10000).
source "$(dirname "$0")/lib.sh"
source "$RENC_TESTS_DIR/vault/vaultlib.sh"

N=${RENC_AKV_SCALE_BLOBS:-10000}
vault_start "$WORK/vault" --token-lifetime 20 || { fail "the vault server did not start"; finish; }
export RENC_CA_FILE=$VAULT_CA
CMK="akv:$VAULT_URL/keys/cmk"
V1="akv:$(vault_create_key cmk RSA 2048)" || fail "create cmk"

# N small files in one process.
python3 - "$WORK/in" "$N" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for d in range(0, n, 1000):
    os.makedirs(os.path.join(root, "d%02d" % (d // 1000)), exist_ok=True)
for i in range(n):
    with open(os.path.join(root, "d%02d" % (i // 1000), "b%05d" % i), "wb") as f:
        f.write(os.urandom(256 + i % 700))
EOF
expect_ok renc keys create byok
expect_ok renc env create big
expect_ok renc env set-policy big --byok local:byok
expect_ok renc put --env big "$WORK/in"
expect_out "sealed $N files"
expect_ok renc env set-policy big --cmk "$CMK"

# The server admits 3 requests per 10 s for every 10 blobs (3,000 for
# 10,000: the run lasts over 30 s, longer than a token); the tool is told it
# may send twice that, so it overshoots and must take the 429s.  Faults on top.
LIMIT=$((N * 3 / 10))
vault_admin POST /throttle "{\"limit\":$LIMIT,\"window\":10,\"retry_after\":1}" >/dev/null
vault_admin POST /faults '{"every":97,"status":503}' >/dev/null
vault_admin POST /faults '{"drop":5}' >/dev/null
vault_admin POST /faults '{"delay_ms":1500,"count":20}' >/dev/null
vault_admin POST /stats/reset >/dev/null
expect_ok renc run --env big --akv-rate $((2 * LIMIT)) --progress=none --report "$WORK/report.json"
expect_out "$N blobs re-encrypted" "0 failed" "big is encrypted"
grep -h "key vault:\|blobs/s" "$WORK/out" | sed 's/^/# /'
retries=$(jq '.key_vault.retries' "$WORK/report.json")
throttled=$(jq '.key_vault.throttled' "$WORK/report.json")
tokens=$(jq '.key_vault.tokens' "$WORK/report.json")
check "the run was throttled and retried ($throttled 429s, $retries retries)" \
  [ "${throttled:-0}" -gt 0 -a "${retries:-0}" -gt "${throttled:-0}" ]
cuts=$(jq '.key_vault.rate_cuts' "$WORK/report.json")
check "the 429s lowered the pace ($cuts times, $(jq '.key_vault.rate_at_end' "$WORK/report.json") per 10 s at the end)" \
  [ "${cuts:-0}" -gt 0 ]
check "the server saw the 429s and the faults" \
  [ "$(vault_stats_field throttled)" -gt 0 -a "$(vault_stats_field faults)" -gt 0 ]
check "the server never admitted more than its limit in a window" \
  [ "$(vault_stats_field max_in_window)" -le "$LIMIT" ]
check "a token was fetched again when the first expired ($tokens tokens)" [ "${tokens:-0}" -ge 2 ]
conns=$(vault_stats_field connections)
check "connections were reused: $conns TLS connections for all the requests" [ "$conns" -le 40 ]
check "one wrap per blob ($N)" [ "$(jq '.key_vault.wraps' "$WORK/report.json")" -eq "$N" ]

vault_admin POST /faults '{"clear":true}' >/dev/null
vault_admin POST /throttle '{"limit":0}' >/dev/null
count=$(slot_refs "$STATE/data/big/blobs" | awk '{ printf "%s%s=%s", (NR > 1 ? " " : ""), $1, $2 }')
check "every blob is under the vault key, and only it ($count)" [ "$count" = "$V1=$N" ]
check "no temporaries left" no_temporaries "$STATE/data/big/blobs"

# Every blob verified through the vault (one unwrap each), a sample decrypted.
expect_ok renc verify --env big --progress=none
expect_out "$N blobs verified" "0 failed"
mid=$((N / 2))
for rel in d00/b00000 "d$(printf %02d $((mid / 1000)))/b$(printf %05d $mid)" \
  "d$(printf %02d $(((N - 1) / 1000)))/b$(printf %05d $((N - 1)))"; do
  expect_ok renc decrypt "$STATE/data/big/blobs/in/$rel" "$WORK/p"
  expect_same "plaintext of $rel" "$WORK/in/$rel" "$WORK/p"
  rm -f "$WORK/p"
done
finish
