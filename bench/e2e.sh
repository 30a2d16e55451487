#!/usr/bin/env bash
# End-to-end benchmark of `reencrypt`: builds corpora in a temporary
# directory and prints, from one run, the tool's figures beside the machine's
# own ceilings measured in the same run.
#
#   bench/e2e.sh                      (8 x 256 MiB big blobs, 20000 x 16 KiB small)
#   BIG_COUNT=4 BIG_MB=64 SMALL_COUNT=2000 bench/e2e.sh   (a quick one)
#
# Results go to stdout and, as JSON, to $RENC_BENCH_OUT (default
# bench-results.json in the work directory, printed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
BIG_COUNT=${BIG_COUNT:-8}
BIG_MB=${BIG_MB:-256}
SMALL_COUNT=${SMALL_COUNT:-20000}
SMALL_KB=${SMALL_KB:-16}
MEMORY=${MEMORY:-256M}
threads=$(nproc)

scripts/bootstrap.sh >/dev/null
dir=$(scripts/build.sh bench | tail -n 1)
R=$PWD/$dir/reencrypt/reencrypt
MK=$PWD/$dir/bench/mkcorpus
LOOP=$PWD/$dir/bench/baseline_loop
BR=$PWD/$dir/bench/bench_record

work=${RENC_BENCH_DIR:-$(mktemp -d /var/tmp/renc-bench.XXXXXX)}
trap 'rm -rf "$work"' EXIT
export RENC_HOME=$work/state
out=${RENC_BENCH_OUT:-$work/bench-results.json}
declare -A fig

say() { printf '%s\n' "$*" >&2; }
mbps_of() { jq -r '.mb_per_s' "$1"; }
# Runs a command under GNU time; the peak RSS (KiB) goes to $work/rss.
timed() { /usr/bin/time -f '%M' -o "$work/rss" "$@"; }

"$R" keys create a >/dev/null
"$R" keys create b >/dev/null
"$R" keys create c >/dev/null
"$R" keys create d >/dev/null
"$R" keys create e >/dev/null

say "== corpora: $BIG_COUNT x $BIG_MB MiB and $SMALL_COUNT x $SMALL_KB KiB under $work"
"$MK" "$RENC_HOME/keyring" local:a "$BIG_COUNT" $((BIG_MB << 20)) "$work/big" 1000
"$MK" "$RENC_HOME/keyring" local:a "$SMALL_COUNT" $((SMALL_KB << 10)) "$work/small" 1000
cp -r "$work/small" "$work/small-loop"
cp -r "$work/small" "$work/small-ident"
cp -r "$work/small" "$work/small-batch"
sync
big_bytes=$(du -sb "$work/big" | cut -f1)

say "== ceilings"
# Crypto: single-core AES-256-GCM of the backend in use (the Google
# Benchmark shim), times the cores; openssl speed beside it.
"$BR" --benchmark_filter='^aead_seal/auto/1048576$' \
      --benchmark_format=json --benchmark_min_time=1 > "$work/gb.json" 2>/dev/null
core_bps=$(jq '[.benchmarks[] | select(.name|test("aead_seal")) | .bytes_per_second] | max' "$work/gb.json")
fig[crypto_core_mbps]=$(python3 -c "print(round($core_bps/1e6,1))")
fig[crypto_ceiling_mbps]=$(python3 -c "print(round($core_bps*$threads/1e6,1))")
fig[openssl_speed_mbps]=$(openssl speed -evp aes-256-gcm -bytes 1048576 -seconds 2 2>/dev/null |
  awk 'tolower($1) ~ /^aes-256-gcm/ {v=$NF; sub(/k$/,"",v); print v*1000/1e6}')
# Page-cache read: what reading the blobs costs before any crypto (a copy
# from the page cache, per core).  verify is bound by this plus one pass.
cat "$work"/big/*/*.renc > /dev/null
start=$(date +%s.%N)
for f in "$work"/big/*/*.renc; do dd if="$f" of=/dev/null bs=1M status=none; done
end=$(date +%s.%N)
fig[pagecache_read_core_mbps]=$(python3 -c "print(round($big_bytes/($end-$start)/1e6,1))")
# Durable sequential writes of the same size (O_DIRECT, then fsync).
dd if=/dev/zero of="$work/dd.bin" bs=1M count=$((BIG_MB * 2)) oflag=direct conv=fsync 2> "$work/dd.txt"
fig[durable_write_mbps]=$(python3 - "$work/dd.txt" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
m = re.search(r'(\d+) bytes .* copied, ([\d.]+) s', t)
print(round(int(m.group(1)) / float(m.group(2)) / 1e6, 1))
PY
)
# Direct reads (no page cache) of the big blobs: with --direct every byte is
# read from the device and written to it, so the ceiling combines both.
first=$(ls "$work"/big/*/*.renc | head -n 1)
dd if="$first" of=/dev/null bs=1M iflag=direct 2> "$work/ddr.txt"
fig[direct_read_mbps]=$(python3 - "$work/ddr.txt" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
m = re.search(r'(\d+) bytes .* copied, ([\d.]+) s', t)
print(round(int(m.group(1)) / float(m.group(2)) / 1e6, 1))
PY
)
rm -f "$work/dd.bin"
# Plain durable copy of the big blobs (read, write, fsync each).
start=$(date +%s.%N)
mkdir -p "$work/copy"
for f in "$work"/big/*/*.renc; do dd if="$f" of="$work/copy/$(basename "$f")" bs=4M conv=fsync status=none; done
end=$(date +%s.%N)
fig[plain_copy_mbps]=$(python3 -c "print(round($big_bytes/($end-$start)/1e6,1))")
rm -rf "$work/copy"
# Bare file work for the small blobs, done the way the tool does it (the
# same pipeline, no crypto): read, write a temporary, durability, rename.
timed "$R" run --to local:a --bench-identity --progress=none --memory "$MEMORY" \
  --report "$work/ident.json" "$work/small-ident" >/dev/null
fig[filework_file_blobs_per_s]=$(jq -r '.blobs_per_s|round' "$work/ident.json")
# The same with --barrier batch (one syncfs for a batch's files, one for
# its renames): the better of the two is the small-blob ceiling.
"$R" run --to local:b --bench-identity --barrier batch --progress=none --memory "$MEMORY" \
  --report "$work/ident.json" "$work/small-ident" >/dev/null
fig[filework_batch_blobs_per_s]=$(jq -r '.blobs_per_s|round' "$work/ident.json")
fig[filework_blobs_per_s]=$(( fig[filework_file_blobs_per_s] > fig[filework_batch_blobs_per_s] ?
  fig[filework_file_blobs_per_s] : fig[filework_batch_blobs_per_s] ))

say "== the tool"
cat "$work"/big/*/*.renc > /dev/null   # page cache, as the target says
timed "$R" verify --progress=none --memory "$MEMORY" --report "$work/verify.json" "$work/big" >/dev/null
fig[verify_big_mbps]=$(mbps_of "$work/verify.json")
fig[verify_rss_mib]=$(( $(cat "$work/rss") / 1024 ))

timed "$R" run --to local:b --mode rekey --progress=none --memory "$MEMORY" \
  --report "$work/rekey-big.json" "$work/big" >/dev/null
fig[rekey_big_mbps]=$(mbps_of "$work/rekey-big.json")
fig[rekey_big_rss_mib]=$(( $(cat "$work/rss") / 1024 ))

timed "$R" run --to local:e --mode rekey --direct --progress=none --memory "$MEMORY" \
  --report "$work/rekey-big-direct.json" "$work/big" >/dev/null
fig[rekey_big_direct_mbps]=$(mbps_of "$work/rekey-big-direct.json")
fig[rekey_big_direct_rss_mib]=$(( $(cat "$work/rss") / 1024 ))

timed "$R" run --to local:c --mode rewrap --copy --progress=none --memory "$MEMORY" \
  --report "$work/rewrap-big.json" "$work/big" >/dev/null
fig[rewrap_big_mbps]=$(mbps_of "$work/rewrap-big.json")

timed "$R" run --to local:b --mode rekey --progress=none --memory "$MEMORY" \
  --report "$work/rekey-small.json" "$work/small" >/dev/null
fig[rekey_small_blobs_per_s]=$(jq -r '.blobs_per_s|round' "$work/rekey-small.json")
fig[rekey_small_rss_mib]=$(( $(cat "$work/rss") / 1024 ))
timed "$R" run --to local:b --mode rekey --barrier batch --progress=none --memory "$MEMORY" \
  --report "$work/rekey-small-batch.json" "$work/small-batch" >/dev/null
fig[rekey_small_batch_blobs_per_s]=$(jq -r '.blobs_per_s|round' "$work/rekey-small-batch.json")

"$LOOP" "$RENC_HOME/keyring" local:d "$work/small-loop" > "$work/loop.json"
fig[loop_small_blobs_per_s]=$(jq -r '.blobs_per_s|round' "$work/loop.json")

# Everything must still open: verify the results (not timed).
"$R" verify --progress=none "$work/big" "$work/small" "$work/small-batch" >/dev/null

python3 - "$out" "$threads" "$MEMORY" <<PY
import json, sys
f = {k: float(v) for k, v in dict($(for k in "${!fig[@]}"; do printf '%s=%s,' "$k" "${fig[$k]}"; done)).items()}
out, threads, memory = sys.argv[1], int(sys.argv[2]), sys.argv[3]
mem_mib = int(memory[:-1]) * (1024 if memory.endswith('G') else 1)
def row(name, value, unit, ceiling, ceiling_name, target):
    r = value / ceiling if ceiling else 0
    ok = 'ok' if r >= target else 'BELOW'
    print(f"{name:34} {value:10.1f} {unit:8} {ceiling:10.1f} {ceiling_name:32} {r*100:6.1f}%  (target {target*100:.0f}%: {ok})")
print(f"machine: {threads} cores; backend AES-256-GCM {f['crypto_core_mbps']:.0f} MB/s/core "
      f"(openssl speed -evp aes-256-gcm: {f['openssl_speed_mbps']:.0f} MB/s/core); "
      f"page-cache read {f['pagecache_read_core_mbps']:.0f} MB/s/core; durable write {f['durable_write_mbps']:.0f} MB/s; direct read {f['direct_read_mbps']:.0f} MB/s; plain durable copy {f['plain_copy_mbps']:.0f} MB/s; "
      f"bare file work {f['filework_file_blobs_per_s']:.0f} blobs/s (--barrier file), "
      f"{f['filework_batch_blobs_per_s']:.0f} (--barrier batch)")
print(f"{'figure':34} {'measured':>10} {'unit':8} {'ceiling':>10} {'which ceiling binds':32} {'ratio':>7}")
row('verify big (page cache)', f['verify_big_mbps'], 'MB/s', f['crypto_ceiling_mbps'], 'crypto x cores (one pass)', 0.8)
copy_aes = threads / (1 / f['pagecache_read_core_mbps'] + 1 / f['crypto_core_mbps'])
row('  same, vs read copy + one pass', f['verify_big_mbps'], 'MB/s', copy_aes, 'page-cache copy + AES, x cores', 0.8)
rk = min(f['crypto_ceiling_mbps'] / 2, f['durable_write_mbps'])
row('rekey big, in place, durable', f['rekey_big_mbps'], 'MB/s', rk,
    'crypto/2' if f['crypto_ceiling_mbps'] / 2 < f['durable_write_mbps'] else 'durable write', 0.8)
rd = min(f['crypto_ceiling_mbps'] / 2, 1 / (1 / f['direct_read_mbps'] + 1 / f['durable_write_mbps']))
row('rekey big, in place, --direct', f['rekey_big_direct_mbps'], 'MB/s', rd,
    'direct read + durable write, one device', 0.8)
row('rekey 16 KiB blobs, in place', f['rekey_small_blobs_per_s'], 'blobs/s', f['filework_blobs_per_s'], 'bare file work, best barrier', 0.8)
row('  same, --barrier batch', f['rekey_small_batch_blobs_per_s'], 'blobs/s', f['filework_blobs_per_s'], 'bare file work, best barrier', 0.8)
row('  vs one-file-at-a-time loop', f['rekey_small_blobs_per_s'], 'blobs/s', f['loop_small_blobs_per_s'], 'the plain loop (x5 target)', 5.0)
row('rewrap big by copy', f['rewrap_big_mbps'], 'MB/s', f['plain_copy_mbps'], 'plain durable copy', 0.8)
for k in ('verify_rss_mib', 'rekey_big_rss_mib', 'rekey_big_direct_rss_mib', 'rekey_small_rss_mib'):
    lim = mem_mib + 64
    print(f"peak RSS {k[:-8]:25} {f[k]:10.0f} MiB      limit {lim} MiB (--memory {memory} + 64 MiB): {'ok' if f[k] < lim else 'OVER'}")
json.dump(f, open(out, 'w'), indent=2)
print(f"results: {out}")
PY
[ -n "${RENC_BENCH_DIR:-}" ] || cp "$out" ./bench-results.json 2>/dev/null || true
