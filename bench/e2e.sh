#!/usr/bin/env bash
# End-to-end benchmark of `reencrypt`: builds corpora in a temporary
# directory and prints, from one run, each of the tool's figures beside the
# machine's ceiling that binds it, measured in the same run.
#
#   bench/e2e.sh        (8 x 256 MiB big blobs, 20000 x 16 KiB small,
#                        16 x 256 MiB for the page-cache check; ~6 minutes)
#   BIG_COUNT=2 BIG_MB=64 SMALL_COUNT=2000 CACHE_COUNT=4 bench/e2e.sh   (a quick one)
#
# The ceilings: fio writing the big blobs' bytes O_DIRECT at queue depth 16
# (and buffered + fsync beside it); fio reading and writing them at once,
# O_DIRECT (the copy --direct does); bench/filework doing the small blobs'
# bare file work with each barrier strategy (the best is the ceiling); a
# page-cache copy plus one AES pass (verify).  Results go to stdout and, as
# JSON, to $RENC_BENCH_OUT (default bench-results.json in the work
# directory, copied to ./bench-results.json).
set -euo pipefail
cd "$(dirname "$0")/.."
BIG_COUNT=${BIG_COUNT:-8}
BIG_MB=${BIG_MB:-256}
SMALL_COUNT=${SMALL_COUNT:-20000}
SMALL_KB=${SMALL_KB:-16}
CACHE_COUNT=${CACHE_COUNT:-16}
MEMORY=${MEMORY:-256M}
threads=$(nproc)

scripts/bootstrap.sh >/dev/null
dir=$(scripts/build.sh bench | tail -n 1)
R=$PWD/$dir/reencrypt/reencrypt
MK=$PWD/$dir/bench/mkcorpus
LOOP=$PWD/$dir/bench/baseline_loop
FW=$PWD/$dir/bench/filework
BR=$PWD/$dir/bench/bench_record

work=${RENC_BENCH_DIR:-$(mktemp -d /var/tmp/renc-bench.XXXXXX)}
trap 'rm -rf "$work"' EXIT
export RENC_HOME=$work/state
out=${RENC_BENCH_OUT:-$work/bench-results.json}
declare -A fig

say() { printf '%s\n' "$*" >&2; }
mbps_of() { jq -r '.mb_per_s' "$1"; }
# tool NAME ARGS...: one run of the tool under GNU time, its report in
# $work/NAME.json, its peak RSS (MiB) as fig[NAME_rss_mib].
tool() {
  local name=$1
  shift
  /usr/bin/time -f '%M' -o "$work/rss" "$R" "$@" --progress=none --memory "$MEMORY" \
    --report "$work/$name.json" >/dev/null
  fig[${name}_rss_mib]=$(($(cat "$work/rss") / 1024))
}
# fio_mbps JSON KIND: the MB/s of a fio run (its runtime includes the
# end_fsync).  The engine: io_uring, else libaio.
fio_mbps() { jq "[.jobs[].$2.bw_bytes] | add / 1e6 | . * 10 | round / 10" "$1"; }
engine=io_uring
fio --name=probe --filename="$(mktemp -u /var/tmp/renc-probe.XXXXXX)" --size=1M --rw=write \
  --ioengine=io_uring --direct=1 --unlink=1 >/dev/null 2>&1 || engine=libaio
cache_pct() { # the percent of the files' bytes in the page cache
  find "$@" -type f -name '*.renc' -print0 | xargs -0 fincore --bytes --noheadings -o RES,SIZE |
    awk '{r += $1; s += $2} END {printf "%.2f\n", s ? 100 * r / s : 0}'
}

for k in a b c d e; do "$R" keys create $k >/dev/null; done

say "== corpora: $BIG_COUNT x $BIG_MB MiB, $SMALL_COUNT x $SMALL_KB KiB, $CACHE_COUNT x $BIG_MB MiB under $work"
"$MK" "$RENC_HOME/keyring" local:a "$BIG_COUNT" $((BIG_MB << 20)) "$work/big" 1000
"$MK" "$RENC_HOME/keyring" local:a "$SMALL_COUNT" $((SMALL_KB << 10)) "$work/small" 1000
"$MK" "$RENC_HOME/keyring" local:a "$CACHE_COUNT" $((BIG_MB << 20)) "$work/cache" 1000
for c in loop ident fw batch; do cp -r "$work/small" "$work/small-$c"; done
sync
big_bytes=$(du -sb "$work/big" | cut -f1)
big_mb=$((BIG_COUNT * BIG_MB))

say "== ceilings (fio engine $engine)"
# Crypto: single-core AES-256-GCM of the backend in use (the Google
# Benchmark shim); openssl speed beside it.
"$BR" --benchmark_filter='^aead_seal/auto/1048576$' \
      --benchmark_format=json --benchmark_min_time=1 > "$work/gb.json" 2>/dev/null
core_bps=$(jq '[.benchmarks[] | select(.name|test("aead_seal")) | .bytes_per_second] | max' "$work/gb.json")
fig[crypto_core_mbps]=$(python3 -c "print(round($core_bps/1e6,1))")
fig[openssl_speed_mbps]=$(openssl speed -evp aes-256-gcm -bytes 1048576 -seconds 2 2>/dev/null |
  awk 'tolower($1) ~ /^aes-256-gcm/ {v=$NF; sub(/k$/,"",v); print v*1000/1e6}')
# Page-cache read: reading the big blobs from the page cache on one core.
cat "$work"/big/*/*.renc > /dev/null
start=$(date +%s.%N)
for f in "$work"/big/*/*.renc; do dd if="$f" of=/dev/null bs=1M status=none; done
end=$(date +%s.%N)
fig[pagecache_read_core_mbps]=$(python3 -c "print(round($big_bytes/($end-$start)/1e6,1))")
# Durable writes of the big blobs' bytes: O_DIRECT at queue depth 16, and
# buffered writes + one fsync.
fio --name=direct --filename="$work/fio-d.bin" --rw=write --bs=1M --size=${big_mb}M --direct=1 \
  --ioengine=$engine --iodepth=16 --end_fsync=1 --output-format=json --output="$work/fio-d.json" >/dev/null
fig[fio_direct_qd16_mbps]=$(fio_mbps "$work/fio-d.json" write)
fio --name=buffered --filename="$work/fio-b.bin" --rw=write --bs=1M --size=${big_mb}M \
  --ioengine=psync --end_fsync=1 --output-format=json --output="$work/fio-b.json" >/dev/null
fig[fio_buffered_fsync_mbps]=$(fio_mbps "$work/fio-b.json" write)
rm -f "$work/fio-b.bin"
# The copy --direct does: the same bytes read and written at once, both
# O_DIRECT at queue depth 16; the copy goes at the slower of the two.
fio --name=rd --filename="$work/fio-d.bin" --rw=read --bs=1M --size=${big_mb}M --direct=1 \
  --ioengine=$engine --iodepth=16 --name=wr --filename="$work/fio-c.bin" --rw=write --bs=1M \
  --size=${big_mb}M --direct=1 --ioengine=$engine --iodepth=16 --end_fsync=1 \
  --output-format=json --output="$work/fio-c.json" >/dev/null
fig[fio_copy_direct_mbps]=$(jq '[.jobs[] | (.read.bw_bytes + .write.bw_bytes)] | min / 1e6 | . * 10 | round / 10' "$work/fio-c.json")
rm -f "$work/fio-d.bin" "$work/fio-c.bin"
# Plain durable copy of the big blobs (read, write, fsync each): rewrap --copy.
start=$(date +%s.%N)
mkdir -p "$work/copy"
for f in "$work"/big/*/*.renc; do dd if="$f" of="$work/copy/$(basename "$f")" bs=4M conv=fsync status=none; done
end=$(date +%s.%N)
fig[plain_copy_mbps]=$(python3 -c "print(round($big_bytes/($end-$start)/1e6,1))")
rm -rf "$work/copy"
# The small blobs' bare file work (bench/filework: read, write a
# temporary, barrier, rename, barrier) with each barrier strategy; the
# best is the ceiling.
best=0
for s in fdatasync syncfs:128 syncfs:1024 syncfs:4096; do
  v=$("$FW" "$work/small-fw" "$s" | jq '.files_per_s | round')
  fig[filework_${s/:/_}_files_per_s]=$v
  say "  filework $s: $v files/s"
  if ((v > best)); then best=$v; fi
done
fig[filework_best_files_per_s]=$best
# The tool's own pipeline with no crypto (--bench-identity), for reference.
tool ident run --to local:a --bench-identity "$work/small-ident"
fig[identity_blobs_per_s]=$(jq -r '.blobs_per_s|round' "$work/ident.json")

say "== the tool"
cat "$work"/big/*/*.renc > /dev/null   # in the page cache, as the target says
tool verify verify "$work/big"
fig[verify_big_mbps]=$(mbps_of "$work/verify.json")

cat "$work"/big/*/*.renc > /dev/null
tool rekey_big run --to local:b --mode rekey "$work/big"
fig[rekey_big_mbps]=$(mbps_of "$work/rekey_big.json")

cat "$work"/big/*/*.renc > /dev/null
tool rekey_big_dw run --to local:c --mode rekey --write-mode direct "$work/big"
fig[rekey_big_dw_mbps]=$(mbps_of "$work/rekey_big_dw.json")

tool rekey_big_direct run --to local:e --mode rekey --direct "$work/big"
fig[rekey_big_direct_mbps]=$(mbps_of "$work/rekey_big_direct.json")

tool rewrap_big run --to local:d --mode rewrap --copy "$work/big"
fig[rewrap_big_mbps]=$(mbps_of "$work/rewrap_big.json")

tool rekey_small run --to local:b --mode rekey --barrier file "$work/small"
fig[rekey_small_blobs_per_s]=$(jq -r '.blobs_per_s|round' "$work/rekey_small.json")
tool rekey_small_batch run --to local:b --mode rekey --barrier batch "$work/small-batch"
fig[rekey_small_batch_blobs_per_s]=$(jq -r '.blobs_per_s|round' "$work/rekey_small_batch.json")

"$LOOP" "$RENC_HOME/keyring" local:d "$work/small-loop" > "$work/loop.json"
fig[loop_small_blobs_per_s]=$(jq -r '.blobs_per_s|round' "$work/loop.json")

# Page-cache hygiene: the blobs in the page cache, a rekey (no
# --keep-cache), then how much of them is still cached.
cat "$work"/cache/*/*.renc > /dev/null
fig[cache_before_pct]=$(cache_pct "$work/cache")
tool rekey_cache run --to local:b --mode rekey "$work/cache"
fig[rekey_cache_mbps]=$(mbps_of "$work/rekey_cache.json")
fig[cache_after_pct]=$(cache_pct "$work/cache")

# Everything must still open: verify the results (not timed).
"$R" verify --progress=none "$work/big" "$work/small" "$work/small-batch" "$work/cache" >/dev/null
fig[load_avg]=$(cut -d' ' -f1 /proc/loadavg)

python3 - "$out" "$threads" "$MEMORY" <<PY
import json, sys
f = {k: float(v) for k, v in dict($(for k in "${!fig[@]}"; do printf '%s=%s,' "$k" "${fig[$k]}"; done)).items()}
out, threads, memory = sys.argv[1], int(sys.argv[2]), sys.argv[3]
mem_mib = int(memory[:-1]) * (1024 if memory.endswith('G') else 1)
def row(name, value, unit, ceiling, ceiling_name, target=None):
    r = value / ceiling if ceiling else 0
    t = f"(target {target*100:.0f}%: {'met' if r >= target else 'NOT met'})" if target else ''
    print(f"{name:36} {value:9.1f} {unit:8} {ceiling:9.1f} {ceiling_name:38} {r*100:6.1f}%  {t}")
print(f"machine: {threads} cores, load {f['load_avg']}; AES-256-GCM {f['crypto_core_mbps']:.0f} MB/s/core "
      f"(openssl speed: {f['openssl_speed_mbps']:.0f}); page-cache read {f['pagecache_read_core_mbps']:.0f} MB/s/core")
print(f"durable writes: fio O_DIRECT QD16 {f['fio_direct_qd16_mbps']:.0f} MB/s, buffered + fsync "
      f"{f['fio_buffered_fsync_mbps']:.0f}; O_DIRECT copy {f['fio_copy_direct_mbps']:.0f}; "
      f"plain durable copy (dd) {f['plain_copy_mbps']:.0f}")
print("bare file work (bench/filework): " + ", ".join(
    f"{s} {f['filework_' + s.replace(':', '_') + '_files_per_s']:.0f}"
    for s in ('fdatasync', 'syncfs:128', 'syncfs:1024', 'syncfs:4096')) +
    f" files/s; the tool with no crypto (--bench-identity) {f['identity_blobs_per_s']:.0f} blobs/s")
print(f"{'figure':36} {'measured':>9} {'unit':8} {'ceiling':>9} {'which ceiling binds':38} {'ratio':>7}")
copy_aes = threads / (1 / f['pagecache_read_core_mbps'] + 1 / f['crypto_core_mbps'])
row('verify big (page cache)', f['verify_big_mbps'], 'MB/s', copy_aes, 'page-cache copy + one AES pass, x cores', 0.8)
fd = f['fio_direct_qd16_mbps']
row('rekey big in place (page cache)', f['rekey_big_mbps'], 'MB/s', fd, 'fio O_DIRECT write QD16', 0.8)
row('  same, --write-mode direct', f['rekey_big_dw_mbps'], 'MB/s', fd, 'fio O_DIRECT write QD16', 0.8)
row('rekey big in place, --direct', f['rekey_big_direct_mbps'], 'MB/s', f['fio_copy_direct_mbps'],
    'fio O_DIRECT read + write at once', 0.8)
row('rewrap big by copy', f['rewrap_big_mbps'], 'MB/s', f['plain_copy_mbps'], 'plain durable copy', 0.8)
fw = f['filework_best_files_per_s']
row('rekey 16 KiB blobs, --barrier file', f['rekey_small_blobs_per_s'], 'blobs/s', fw, 'bare file work, best barrier', 0.8)
row('rekey 16 KiB blobs, --barrier batch', f['rekey_small_batch_blobs_per_s'], 'blobs/s', fw, 'bare file work, best barrier', 0.8)
best_small = max(f['rekey_small_blobs_per_s'], f['rekey_small_batch_blobs_per_s'])
row('  the better, vs one-file loop', best_small, 'blobs/s', f['loop_small_blobs_per_s'], 'bench/baseline_loop (ratio only)')
ok = f['cache_after_pct'] < 5
print(f"page cache after a rekey of {f['rekey_cache_mbps']:.0f} MB/s: {f['cache_after_pct']:.2f}% of the blobs' bytes cached "
      f"(before: {f['cache_before_pct']:.1f}%; target < 5%: {'met' if ok else 'NOT met'})")
lim = mem_mib + 64
for k in sorted(k for k in f if k.endswith('_rss_mib')):
    print(f"peak RSS {k[:-8]:30} {f[k]:6.0f} MiB   limit {lim} MiB (--memory {memory} + 64 MiB): "
          f"{'met' if f[k] <= lim else 'NOT met'}")
json.dump(f, open(out, 'w'), indent=2)
print(f"results: {out}")
PY
[ -n "${RENC_BENCH_DIR:-}" ] || cp "$out" ./bench-results.json 2>/dev/null || true
