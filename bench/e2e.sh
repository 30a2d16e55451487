#!/usr/bin/env bash
# End-to-end benchmark of `reencrypt`: builds corpora in a temporary
# directory and prints, from one run, each of the tool's figures beside the
# machine's ceiling that binds it, measured in the same run.
#
#   bench/e2e.sh        (8 x 256 MiB big blobs, 20000 x 16 KiB small,
#                        16 x 256 MiB for the page-cache check, 64 x 8 MiB +
#                        1000 x 16 KiB of plaintext for put, restore and copy;
#                        ~8 minutes)
#   BIG_COUNT=2 BIG_MB=64 SMALL_COUNT=2000 CACHE_COUNT=4 ENV_BIG_COUNT=8 \
#     ENV_SMALL_COUNT=200 bench/e2e.sh                    (a quick one)
#
# The ceilings: fio writing the big blobs' bytes O_DIRECT at queue depth 16
# (and buffered + fsync beside it); fio reading the big blobs and writing as
# many bytes at once, O_DIRECT (the copy --direct does), taking turns with
# the tool's --direct; bench/filework doing the small blobs'
# bare file work with each barrier strategy (the best is the ceiling); a
# page-cache copy plus one AES pass, each on every core at once (verify); the
# tool's own `run --env --mode rekey` for put, restore and copy on the same
# corpus.  Each device- or CPU-bound figure and its ceiling take turns over
# three rounds, and each is the median of its three (the machine drifts).
# Results go to stdout and, as
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
ENV_BIG_COUNT=${ENV_BIG_COUNT:-64}
ENV_BIG_MB=${ENV_BIG_MB:-8}
ENV_SMALL_COUNT=${ENV_SMALL_COUNT:-1000}
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
# $work/NAME.json, its peak RSS (MiB) as fig[NAME_rss_mib] (the highest of
# NAME's runs).
tool() {
  local name=$1
  shift
  /usr/bin/time -f '%M' -o "$work/rss" "$R" "$@" --progress=none --memory "$MEMORY" \
    --report "$work/$name.json" >/dev/null
  local rss=$(($(cat "$work/rss") / 1024))
  if ((rss > ${fig[${name}_rss_mib]:-0})); then fig[${name}_rss_mib]=$rss; fi
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

say "== ceilings and the tool, in turns (fio engine $engine)"
# This machine's device (and its CPU share) drifts by tens of percent from
# minute to minute, so a ceiling measured minutes before its figure says
# little.  Each figure and the ceiling that binds it take turns, three
# rounds, and each is reported as the median of its three.
median() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }
mbps() { python3 -c "print(round($1/($3-$2)/1e6,1))"; } # BYTES START END
# Crypto on one core, for reference: the backend in use (the Google
# Benchmark shim) and openssl speed.
"$BR" --benchmark_filter='^aead_seal/auto/1048576$' \
      --benchmark_format=json --benchmark_min_time=1 > "$work/gb.json" 2>/dev/null
core_bps=$(jq '[.benchmarks[] | select(.name|test("aead_seal")) | .bytes_per_second] | max' "$work/gb.json")
fig[crypto_core_mbps]=$(python3 -c "print(round($core_bps/1e6,1))")
fig[openssl_speed_mbps]=$(openssl speed -evp aes-256-gcm -bytes 1048576 -seconds 2 2>/dev/null |
  awk 'tolower($1) ~ /^aes-256-gcm/ {v=$NF; sub(/k$/,"",v); print v*1000/1e6}')
# AES on every core at once: the sum of the cores' rates, each sealing on
# its own.
crypto_all() {
  for ((t = 0; t < threads; t++)); do
    "$BR" --benchmark_filter='^aead_seal/auto/1048576$' \
          --benchmark_format=json --benchmark_min_time=0.5 > "$work/gb$t.json" 2>/dev/null &
  done
  wait
  cat "$work"/gb[0-9]*.json | jq -s '[.[].benchmarks[] | select(.name|test("aead_seal")) | .bytes_per_second] | add / 1e6 | round'
}
# Page-cache reads of what verify reads (the big blobs and the cache
# corpus) by N readers at once, each reading its share of the files: the
# cores share the memory bandwidth, so N readers do not read N times as
# fast as one.
verify_dirs=("$work/big" "$work/cache")
mapfile -t vfiles < <(find "${verify_dirs[@]}" -type f -name '*.renc' | sort)
verify_bytes=$(cat "${vfiles[@]}" | wc -c)
read_on() {
  local n=$1 t start end
  start=$(date +%s.%N)
  for ((t = 0; t < n; t++)); do
    (for ((i = t; i < ${#vfiles[@]}; i += n)); do dd if="${vfiles[i]}" of=/dev/null bs=1M status=none; done) &
  done
  wait
  end=$(date +%s.%N)
  mbps "$verify_bytes" "$start" "$end"
}
# Durable writes of the big blobs' bytes, O_DIRECT at queue depth 16.
fio_write() {
  fio --name=direct --filename="$work/fio-d.bin" --rw=write --bs=1M --size=${big_mb}M --direct=1 \
    --ioengine=$engine --iodepth=16 --end_fsync=1 --output-format=json --output="$work/fio-d.json" >/dev/null
  rm -f "$work/fio-d.bin"
  fio_mbps "$work/fio-d.json" write
}
# The copy --direct does: fio reading the big blobs themselves and writing
# as many bytes, at once, both O_DIRECT at queue depth 16 (the copy goes at
# the slower of the two).
big_files=$(find "$work/big" -type f -name '*.renc' | sort | paste -sd:)
fio_copy() {
  fio --name=rd --filename="$big_files" --rw=read --bs=1M --size=${big_mb}M --direct=1 \
    --ioengine=$engine --iodepth=16 --name=wr --filename="$work/fio-c.bin" --rw=write --bs=1M \
    --size=${big_mb}M --direct=1 --ioengine=$engine --iodepth=16 --end_fsync=1 \
    --output-format=json --output="$work/fio-c.json" >/dev/null
  rm -f "$work/fio-c.bin"
  jq '[.jobs[] | (.read.bw_bytes + .write.bw_bytes)] | min / 1e6 | . * 10 | round / 10' "$work/fio-c.json"
}
# A plain durable copy of the big blobs (read, write, fsync each): what
# rewrap --copy does.
plain_copy() {
  local start end f
  mkdir -p "$work/copy"
  start=$(date +%s.%N)
  for f in "$work"/big/*/*.renc; do dd if="$f" of="$work/copy/$(basename "$f")" bs=4M conv=fsync status=none; done
  end=$(date +%s.%N)
  rm -rf "$work/copy"
  mbps "$big_bytes" "$start" "$end"
}
# Buffered writes + one fsync, once, for reference.
fio --name=buffered --filename="$work/fio-b.bin" --rw=write --bs=1M --size=${big_mb}M \
  --ioengine=psync --end_fsync=1 --output-format=json --output="$work/fio-b.json" >/dev/null
fig[fio_buffered_fsync_mbps]=$(fio_mbps "$work/fio-b.json" write)
rm -f "$work/fio-b.bin"
# The tool's own pipeline with no crypto (--bench-identity), for reference.
tool ident run --to local:a --bench-identity "$work/small-ident"
fig[identity_blobs_per_s]=$(jq -r '.blobs_per_s|round' "$work/ident.json")

# add NAME VALUE: appends VALUE to the runs of figure NAME.
declare -A runs
add() { runs[$1]+=" $2"; }
for r in 1 2 3; do
  say "-- round $r"
  # verify, in the page cache as the target says (verify drops the pages
  # after it, so they are read in again first), beside its ceiling.
  add crypto_all_mbps "$(crypto_all)"
  cat "${vfiles[@]}" > /dev/null
  add pagecache_read_core_mbps "$(read_on 1)"
  add pagecache_read_all_mbps "$(read_on "$threads")"
  cat "${vfiles[@]}" > /dev/null
  tool verify verify "${verify_dirs[@]}"
  add verify_big_mbps "$(mbps_of "$work/verify.json")"
  # The big blobs: rekey in place (source in the page cache) and with
  # --write-mode direct against fio's O_DIRECT QD16 write; --direct (cold
  # source) against fio's copy of the blobs; rewrap by copy against the
  # plain durable copy.  The targets change each time (b c e d) so every
  # run does the whole work.
  add fio_direct_qd16_mbps "$(fio_write)"
  cat "$work"/big/*/*.renc > /dev/null
  tool rekey_big run --to local:b --mode rekey "$work/big"
  add rekey_big_mbps "$(mbps_of "$work/rekey_big.json")"
  cat "$work"/big/*/*.renc > /dev/null
  tool rekey_big_dw run --to local:c --mode rekey --write-mode direct "$work/big"
  add rekey_big_dw_mbps "$(mbps_of "$work/rekey_big_dw.json")"
  add fio_copy_direct_mbps "$(fio_copy)"
  tool rekey_big_direct run --to local:e --mode rekey --direct "$work/big"
  add rekey_big_direct_mbps "$(mbps_of "$work/rekey_big_direct.json")"
  add plain_copy_mbps "$(plain_copy)"
  tool rewrap_big run --to local:d --mode rewrap --copy "$work/big"
  add rewrap_big_mbps "$(mbps_of "$work/rewrap_big.json")"
done
for k in "${!runs[@]}"; do
  # shellcheck disable=SC2086 # the runs are words
  fig[$k]=$(median ${runs[$k]})
  say "  $k:$(printf ' %.0f' ${runs[$k]})"
done
# shellcheck disable=SC2086
fig[verify_min_mbps]=$(printf '%s\n' ${runs[verify_big_mbps]} | sort -g | head -n 1)
# shellcheck disable=SC2086
fig[verify_max_mbps]=$(printf '%s\n' ${runs[verify_big_mbps]} | sort -g | tail -n 1)

# The small blobs against their bare file work (bench/filework: read,
# write a temporary, barrier, rename, barrier) with each barrier strategy,
# the best being the ceiling.  As with --direct, the device drifts: the
# strategies and the tool's two barrier modes take turns, three rounds, and
# each figure is the median of its three.
declare -A fw_runs
sf=() sb=()
for k in b c b; do
  for s in fdatasync syncfs:128 syncfs:1024 syncfs:4096; do
    fw_runs[$s]+=" $("$FW" "$work/small-fw" "$s" | jq '.files_per_s | round')"
  done
  tool rekey_small run --to local:$k --mode rekey --barrier file "$work/small"
  sf+=("$(jq -r '.blobs_per_s|round' "$work/rekey_small.json")")
  tool rekey_small_batch run --to local:$k --mode rekey --barrier batch "$work/small-batch"
  sb+=("$(jq -r '.blobs_per_s|round' "$work/rekey_small_batch.json")")
done
best=0
for s in fdatasync syncfs:128 syncfs:1024 syncfs:4096; do
  # shellcheck disable=SC2086 # the runs are words
  v=$(median ${fw_runs[$s]})
  fig[filework_${s/:/_}_files_per_s]=$v
  say "  filework $s:${fw_runs[$s]} files/s"
  if ((v > best)); then best=$v; fi
done
fig[filework_best_files_per_s]=$best
fig[rekey_small_blobs_per_s]=$(median "${sf[@]}")
fig[rekey_small_batch_blobs_per_s]=$(median "${sb[@]}")
say "  rekey small, --barrier file: ${sf[*]}; batch: ${sb[*]} blobs/s"

"$LOOP" "$RENC_HOME/keyring" local:d "$work/small-loop" > "$work/loop.json"
fig[loop_small_blobs_per_s]=$(jq -r '.blobs_per_s|round' "$work/loop.json")

# Page-cache hygiene: the blobs in the page cache, a rekey (no
# --keep-cache), then how much of them is still cached.
cat "$work"/cache/*/*.renc > /dev/null
fig[cache_before_pct]=$(cache_pct "$work/cache")
tool rekey_cache run --to local:b --mode rekey "$work/cache"
fig[rekey_cache_mbps]=$(mbps_of "$work/rekey_cache.json")
fig[cache_after_pct]=$(cache_pct "$work/cache")

# The environment commands on one corpus: put (seal), restore and copy
# (open + seal + durable stage), each as MB/s of plaintext against `run
# --env --mode rekey` over the same environment's blobs, timed the same way
# (wall clock of the whole command, after a sync).
say "== environment commands: $ENV_BIG_COUNT x $ENV_BIG_MB MiB + $ENV_SMALL_COUNT x $SMALL_KB KiB"
mkdir -p "$work/plain/big" "$work/plain/small"
head -c $((ENV_BIG_COUNT * ENV_BIG_MB << 20)) /dev/urandom | split -a 4 -b $((ENV_BIG_MB << 20)) - "$work/plain/big/b"
head -c $((ENV_SMALL_COUNT * SMALL_KB << 10)) /dev/urandom | split -a 5 -b $((SMALL_KB << 10)) - "$work/plain/small/s"
env_bytes=$(du -sb "$work/plain" | cut -f1)
# timed NAME CMD...: the command's MB/s of plaintext as fig[NAME_mbps], its
# peak RSS as fig[NAME_rss_mib].
timed() {
  local name=$1 t0 t1
  shift
  sync
  t0=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$work/rss" "$@" --memory "$MEMORY" >/dev/null
  t1=$(date +%s.%N)
  fig[${name}_mbps]=$(python3 -c "print(round($env_bytes/($t1-$t0)/1e6,1))")
  fig[${name}_rss_mib]=$(($(cat "$work/rss") / 1024))
  say "  $name: ${fig[${name}_mbps]} MB/s"
}
"$R" keys create cmk >/dev/null
for e in prod dr; do
  "$R" env create "$e" >/dev/null
  "$R" env set-policy "$e" --cmk local:cmk >/dev/null
done
timed env_put "$R" put --env prod "$work/plain/big" "$work/plain/small"
"$R" backup create --env prod --name b1.renc >/dev/null
timed env_restore "$R" restore "$RENC_HOME/data/prod/backups/b1.renc" --target dr
timed env_copy "$R" copy --from prod --to dr
"$R" keys rotate cmk >/dev/null
timed env_rekey "$R" run --env prod --mode rekey --progress=none
rm -rf "$work/plain"

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
print('medians of three rounds (the runs above)')
print(f"{'figure':36} {'measured':>9} {'unit':8} {'ceiling':>9} {'which ceiling binds':38} {'ratio':>7}")
copy_aes = 1 / (1 / f['pagecache_read_all_mbps'] + 1 / f['crypto_all_mbps'])
print(f"verify's ceiling: page-cache reads {f['pagecache_read_all_mbps']:.0f} MB/s on {threads} cores at once "
      f"({f['pagecache_read_core_mbps']:.0f} on one), AES-256-GCM {f['crypto_all_mbps']:.0f} MB/s on {threads} at once; "
      f"one core's rates times {threads} would give "
      f"{threads / (1 / f['pagecache_read_core_mbps'] + 1 / f['crypto_core_mbps']):.0f}")
row('verify, page cache (median of 3)', f['verify_big_mbps'], 'MB/s', copy_aes, 'page-cache copy + one AES pass, all cores', 0.8)
print(f"{'  (its three runs: lowest, highest)':36} {f['verify_min_mbps']:9.1f} {f['verify_max_mbps']:9.1f}")
fd = f['fio_direct_qd16_mbps']
row('rekey big in place (page cache)', f['rekey_big_mbps'], 'MB/s', fd, 'fio O_DIRECT write QD16', 0.8)
row('  same, --write-mode direct', f['rekey_big_dw_mbps'], 'MB/s', fd, 'fio O_DIRECT write QD16', 0.8)
row('rekey big in place, --direct', f['rekey_big_direct_mbps'], 'MB/s', f['fio_copy_direct_mbps'],
    'fio: the blobs read + as much written', 0.8)
row('rewrap big by copy', f['rewrap_big_mbps'], 'MB/s', f['plain_copy_mbps'], 'plain durable copy', 0.8)
fw = f['filework_best_files_per_s']
row('rekey 16 KiB blobs, --barrier file', f['rekey_small_blobs_per_s'], 'blobs/s', fw, 'bare file work, best barrier', 0.8)
row('rekey 16 KiB blobs, --barrier batch', f['rekey_small_batch_blobs_per_s'], 'blobs/s', fw, 'bare file work, best barrier', 0.8)
best_small = max(f['rekey_small_blobs_per_s'], f['rekey_small_batch_blobs_per_s'])
row('  the better, vs one-file loop', best_small, 'blobs/s', f['loop_small_blobs_per_s'], 'bench/baseline_loop (ratio only)')
rk = f['env_rekey_mbps']
row('put (seal), MB/s of plaintext', f['env_put_mbps'], 'MB/s', rk, 'run --env --mode rekey, same corpus', 0.8)
row('restore', f['env_restore_mbps'], 'MB/s', rk, 'run --env --mode rekey, same corpus', 0.8)
row('copy', f['env_copy_mbps'], 'MB/s', rk, 'run --env --mode rekey, same corpus', 0.8)
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
