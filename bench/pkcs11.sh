#!/usr/bin/env bash
# Benchmark of the pkcs11 provider on a SoftHSM2 token made in a temporary
# folder (PROTOCOLS.md 5.2):
#
#   bench/pkcs11.sh              COUNT=2000 bench/pkcs11.sh (a quick one)
#
# 1. Unwraps per second, AES (CKM_AES_KEY_WRAP_PAD) and RSA-2048 (OAEP
#    SHA-1): the bare C_UnwrapKey / C_Decrypt loop beside the provider's
#    unwrap, 2 workers, in the same process (bench/p11_loop.c).
# 2. COUNT small blobs (default 10,000 x 1 KiB) under an HSM AES key,
#    brought to its next version: run --env (header rewrap, one DEK per
#    blob: an unwrap and a wrap in the token each) and run --env --mode
#    rekey --share-dek 1000.
# Results go to stdout and, as JSON, to $RENC_BENCH_OUT (default
# bench-pkcs11.json in the current directory).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-10000}
SECONDS_EACH=${SECONDS_EACH:-3}

scripts/bootstrap.sh >/dev/null
dir=$(scripts/build.sh bench | tail -n 1)
R=$PWD/$dir/reencrypt/reencrypt
LOOP=$PWD/$dir/bench/p11_loop
out=${RENC_BENCH_OUT:-$PWD/bench-pkcs11.json}
say() { printf '%s\n' "$*" >&2; }

work=$(mktemp -d /var/tmp/renc-bench-p11.XXXXXX)
trap 'rm -rf "$work"' EXIT
export RENC_HOME=$work/state
MOD=/usr/lib/softhsm/libsofthsm2.so
mkdir -p "$work/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
  "$work" >"$work/softhsm2.conf"
export SOFTHSM2_CONF=$work/softhsm2.conf RENC_PKCS11_MODULE=$MOD RENC_PKCS11_PIN=1234
softhsm2-util --init-token --free --label bench --pin 1234 --so-pin 5678 >/dev/null
AES="pkcs11:token=bench;object=aes"
RSA="pkcs11:token=bench;object=rsa"
"$R" keys create "$AES" >/dev/null
"$R" keys create "$RSA" --type rsa2048 >/dev/null

say "== unwraps per second, 2 workers, ${SECONDS_EACH} s a loop, 3 rounds alternating"
declare -A rate
for k in aes rsa; do
  ref=$AES
  [ $k = rsa ] && ref=$RSA
  "$LOOP" "$MOD" "$ref" 2 "$SECONDS_EACH" | tee "$work/loop-$k"
  rate[$k-bare]=$(awk '$1 == "best" { sub("/s,", "", $3); print $3 }' "$work/loop-$k")
  rate[$k-provider]=$(awk '$1 == "best" { sub("/s,", "", $6); print $6 }' "$work/loop-$k")
done

say "== corpus: $COUNT x 1 KiB, under $AES"
python3 - "$work/plain" "$COUNT" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
os.makedirs(root)
for i in range(n):
    with open(os.path.join(root, "b%05d" % i), "wb") as f:
        f.write(os.urandom(1024))
PY
runs=(rewrap rekey-shared)
for r in "${runs[@]}"; do
  "$R" env create "$r" >/dev/null
  "$R" env set-policy "$r" --cmk "$AES" >/dev/null
  "$R" put --env "$r" "$work/plain" >/dev/null
done
"$R" keys rotate "$AES" >/dev/null

declare -A res
measure() {
  local name=$1 t0 t1 s
  shift
  t0=$(date +%s.%N)
  "$R" run --env "$name" --progress=none --report "$work/$name.json" "$@" \
    >"$work/$name.out" 2>"$work/$name.err" || { cat "$work/$name.err" >&2; return 1; }
  t1=$(date +%s.%N)
  s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  res[$name]=$(jq -c --arg s "$s" '{seconds: ($s | tonumber), blobs_per_s: .blobs_per_s,
      done: .blobs.done, failed: .blobs.failed, wraps: .hsm.wraps, unwraps: .hsm.unwraps,
      token_calls: .hsm.requests}' "$work/$name.json")
  jq -r --arg n "$name" '"\($n | . + "                " | .[0:14]) \(.seconds) s  \(.blobs_per_s | floor) blobs/s  token unwraps \(.unwraps)  wraps \(.wraps)  calls \(.token_calls)"' <<<"${res[$name]}"
  "$R" verify --env "$name" --progress=none >/dev/null
}
say "== runs to the next version of $AES"
measure rewrap
measure rekey-shared --mode rekey --share-dek 1000

{
  printf '{"count": %s, "seconds_per_loop": %s' "$COUNT" "$SECONDS_EACH"
  for k in aes rsa; do
    printf ', "%s": {"bare_per_s": %s, "provider_per_s": %s}' "$k" "${rate[$k-bare]}" "${rate[$k-provider]}"
  done
  for r in "${runs[@]}"; do printf ', "%s": %s' "$r" "${res[$r]}"; done
  printf '}\n'
} | jq . >"$out"
say "== results in $out"
