#!/usr/bin/env bash
# Benchmark of the akv provider: COUNT small blobs (default 10,000 x 1 KiB)
# moved from a local key to a key vault key held by the local test double
# (tests/vault/vault_server.py, HTTPS on 127.0.0.1), measured beside the
# vault's own ceilings from the same run.
#
#   bench/akv.sh                 COUNT=2000 bench/akv.sh (a quick one)
#
# Runs, each on its own copy of the corpus:
#   rewrap           run --env (header rewrap in place: one vault wrap a blob),
#                    the tool pacing itself at 90% of the documented limit
#   rekey-shared     run --env --mode rekey --share-dek 1000 (one wrap per
#                    1,000 blobs)
#   rewrap-unpaced   rewrap with pacing lifted (--akv-rate 1000000): what the
#                    tool and this machine do when nothing holds them back
#   throttled        rewrap with the server's throttle at the real vault's
#                    limit for RSA-2048 software keys (4,000 per 10 s): the
#                    tool stays under it, and its ETA early in the run is
#                    compared with the time the run took
#   throttled-over   the same throttle, the tool told to send 8,000 per 10 s:
#                    the 429s and retries that pacing avoids, and how the
#                    pace comes down to the server's limit after them
# Ceilings: the server's wrapkey requests/s (tests/vault/loadgen.py, 4
# keep-alive connections) and the documented limit.
# Results go to stdout and, as JSON, to $RENC_BENCH_OUT (default
# bench-akv.json in the current directory).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-10000}

scripts/bootstrap.sh >/dev/null
dir=$(scripts/build.sh bench | tail -n 1)
R=$PWD/$dir/reencrypt/reencrypt
out=${RENC_BENCH_OUT:-$PWD/bench-akv.json}

work=$(mktemp -d /var/tmp/renc-bench-akv.XXXXXX)
export RENC_HOME=$work/state
say() { printf '%s\n' "$*" >&2; }
# shellcheck source=../tests/vault/vaultlib.sh
source tests/vault/vaultlib.sh
trap 'vault_stop; rm -rf "$work"' EXIT
vault_start "$work/vault" >/dev/null
export RENC_CA_FILE=$VAULT_CA
CMK="akv:$VAULT_URL/keys/cmk"
vault_create_key cmk RSA 2048 >/dev/null

say "== ceilings"
ceiling=$(python3 -B tests/vault/loadgen.py --threads 4 --seconds 5 2>/dev/null |
  awk '/wrapkey/ && !/unwrap/ { for (i = 1; i <= NF; i++) if ($i ~ /req\/s/) print $(i-1) }' | head -n 1)
printf '%-40s %10s requests/s\n' "test double, wrapkey, 4 connections" "${ceiling:-?}"
printf '%-40s %10s requests/s\n' "documented limit, RSA-2048 software key" "400"

say "== corpus: $COUNT x 1 KiB, one environment per run"
python3 - "$work/plain" "$COUNT" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
os.makedirs(root)
for i in range(n):
    with open(os.path.join(root, "b%05d" % i), "wb") as f:
        f.write(os.urandom(1024))
EOF
"$R" keys create byok >/dev/null
runs=(rewrap rekey-shared rewrap-unpaced throttled throttled-over)
for r in "${runs[@]}"; do
  "$R" env create "$r" >/dev/null
  "$R" env set-policy "$r" --byok local:byok >/dev/null
  "$R" put --env "$r" "$work/plain" >/dev/null
  "$R" env set-policy "$r" --cmk "$CMK" >/dev/null 2>&1
done

declare -A res
# measure NAME ARGS...: one run --env NAME, its figures from the report.
measure() {
  local name=$1
  shift
  vault_admin POST /stats/reset >/dev/null
  local t0 t1
  t0=$(date +%s.%N)
  "$R" run --env "$name" --progress=json --report "$work/$name.json" "$@" \
    >"$work/$name.out" 2>"$work/$name.err" || { cat "$work/$name.err" >&2; return 1; }
  t1=$(date +%s.%N)
  local s max eta_at eta
  s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  max=$(vault_stats_field max_in_window)
  # The ETA the run gave once 20% of its blobs were done, as a total time.
  eta=$(cat "$work/$name.out" "$work/$name.err" | grep '^{"type":"progress"' |
    jq -r 'select(.blobs_total > 0 and .blobs_done >= .blobs_total / 5) | .elapsed_s + .eta_s' |
    head -n 1)
  res[$name]=$(jq -c --arg s "$s" --arg max "$max" --arg eta "${eta:-null}" \
    '{seconds: ($s | tonumber), blobs_per_s: .blobs_per_s, done: .blobs.done, failed: .blobs.failed,
      wraps: .key_vault.wraps, unwraps: .key_vault.unwraps, requests: .key_vault.requests,
      retries: .key_vault.retries, throttled: .key_vault.throttled,
      paced_at: .key_vault.rate_limit, pace_cuts: .key_vault.rate_cuts,
      paced_at_end: .key_vault.rate_at_end, max_in_10s: ($max | tonumber),
      eta_total_at_20pct: (if $eta == "null" then null else ($eta | tonumber) end)}' "$work/$name.json")
  jq -r --arg n "$name" '"\($n | . + "                  " | .[0:16]) \(.seconds) s  \(.blobs_per_s | floor) blobs/s  wraps \(.wraps)  unwraps \(.unwraps)  retried \(.retries) (429: \(.throttled))  paced at \(.paced_at)/10 s (cut \(.pace_cuts) times, \(.paced_at_end) at the end)  server max in 10 s \(.max_in_10s)  ETA at 20%: \(.eta_total_at_20pct // "-") s"' <<<"${res[$name]}"
}

say "== runs"
measure rewrap
measure rekey-shared --mode rekey --share-dek 1000
measure rewrap-unpaced --akv-rate 1000000
vault_admin POST /throttle '{"limit":4000,"window":10}' >/dev/null
measure throttled
measure throttled-over --akv-rate 8000
vault_admin POST /throttle '{"limit":0}' >/dev/null

{
  printf '{"count": %s, "ceiling_wrapkey_per_s": %s, "documented_limit_per_10s": 4000' \
    "$COUNT" "${ceiling:-null}"
  for r in "${runs[@]}"; do printf ', "%s": %s' "$r" "${res[$r]}"; done
  printf '}\n'
} | jq . >"$out"
say "== results in $out"
