#!/usr/bin/env bash
# Benchmark of `reencrypt run` on Azure Blob Storage (Azurite, in memory, on
# this machine), each figure printed beside the store's own ceiling measured
# in the same run with the same concurrency (bench/blob_ceiling.c: plain
# Get Blob / Put Blob of the same blobs through the project's blob client).
#
#   bench/blob.sh                 (2000 x 16 KiB, 8 x 64 MiB, 2 x 1 MiB vs 2 x 1 GiB)
#   SMALL_COUNT=500 BIG_COUNT=2 HUGE_COUNT=2 HUGE_MB=256 bench/blob.sh   (a quick one)
#
# What it measures:
#   rekey small / big   `run --mode rekey` in place on a container prefix of
#                       tool-written blobs, MB/s and blobs/s, beside the
#                       ceiling's download, upload and copy (each blob read
#                       whole, then put: a run's data path without its crypto
#                       and its extra requests)
#   verify small / big  `verify` of the same prefixes (the read side alone)
#                       beside the ceiling's download
#   one-piece rewrap    `run --mode rewrap` of the big blobs as the ceiling's
#                       copy put them (one Put Blob each): rewritten whole
#   requests per blob   counted by tests/e2e/blob_proxy.py on COUNTED blobs
#                       (not timed): the tool's rekey and header-only rewrap
#                       against the ceiling's copy
#   header-only rewrap  HUGE_COUNT blobs of 1 MiB and as many of HUGE_MB
#                       (1 GiB), `run --mode rewrap --threads 1`: time per
#                       blob of each and their ratio (target: under 2x)
# The corpora are sealed locally (bench/mkcorpus) and uploaded by the tool
# (`run --out URL`, its [header][records] block layout); that upload is
# timed too.  Results go to stdout and, as JSON, to $RENC_BENCH_OUT (default
# bench-blob.json in the current directory).  Needs node 20+ and npm (Azurite,
# tests/e2e/azlib.sh), python3, jq, curl.
set -euo pipefail
cd "$(dirname "$0")/.."
SMALL_COUNT=${SMALL_COUNT:-2000}
SMALL_KB=${SMALL_KB:-16}
BIG_COUNT=${BIG_COUNT:-8}
BIG_MB=${BIG_MB:-64}
HUGE_COUNT=${HUGE_COUNT:-2}
HUGE_MB=${HUGE_MB:-1024}
COUNTED=${COUNTED:-100}
THREADS=${THREADS:-16}   # the tool's default for a container
out=${RENC_BENCH_OUT:-$PWD/bench-blob.json}

scripts/bootstrap.sh >/dev/null
dir=$(scripts/build.sh bench | tail -n 1)
export RENC_BIN=$PWD/$dir/reencrypt/reencrypt
R=$RENC_BIN
MK=$PWD/$dir/bench/mkcorpus
CEIL=$PWD/$dir/bench/blob_ceiling

# lib.sh gives WORK (removed on exit) and STATE; azlib.sh starts Azurite.
TMPDIR=${TMPDIR:-/var/tmp}
export TMPDIR
# shellcheck source=../tests/e2e/lib.sh
. tests/e2e/lib.sh
set -e
# shellcheck source=../tests/e2e/azlib.sh
. tests/e2e/azlib.sh
export AZ_SDK_DIRECT=1 # no SDK server: only Azurite and the proxy are used
say() { printf '%s\n' "$*" >&2; }
declare -A fig

# Azurite keeps every blob in memory, replaced versions until its garbage
# collection runs: room for each corpus four times over, the 1 GiB ones once.
mb_small=$(( (SMALL_COUNT * SMALL_KB + 1023) / 1024 + 1 ))
export AZ_MEMORY_MB=${AZ_MEMORY_MB:-$(( 4 * (mb_small + BIG_COUNT * BIG_MB + HUGE_COUNT) + 5 * HUGE_COUNT * HUGE_MB / 4 + 512 ))}
# (azlib.sh is not written for set -e: its calls go in || lists, where
# set -e does not reach inside them.)
az_setup || exit $?
az_start || { say "Azurite did not start"; exit 1; }
U=$AZ_URL_BASE/bench

for k in a b c d; do "$R" keys create "$k" >/dev/null; done

say "== corpora under $WORK: $SMALL_COUNT x $SMALL_KB KiB, $BIG_COUNT x $BIG_MB MiB, $HUGE_COUNT x 1 MiB and $HUGE_COUNT x $HUGE_MB MiB, $COUNTED x $SMALL_KB KiB counted"
"$MK" "$STATE/keyring" local:a "$SMALL_COUNT" $((SMALL_KB << 10)) "$WORK/small" 1000
"$MK" "$STATE/keyring" local:a "$BIG_COUNT" $((BIG_MB << 20)) "$WORK/big" 1000
"$MK" "$STATE/keyring" local:a "$HUGE_COUNT" $((1 << 20)) "$WORK/tiny" 1000
"$MK" "$STATE/keyring" local:a "$HUGE_COUNT" $((HUGE_MB << 20)) "$WORK/huge" 1000
"$MK" "$STATE/keyring" local:a "$COUNTED" $((SMALL_KB << 10)) "$WORK/counted" 1000

# measure NAME CMD...: runs CMD, keeping its wall time, its own CPU time
# and the CPU time Azurite spent meanwhile (both on this machine's cores).
CLK=$(getconf CLK_TCK)
az_cpu() { awk -v t="$CLK" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$AZ_PID/stat"; }
measure() {
  local name=$1 a0 a1
  shift
  a0=$(az_cpu)
  /usr/bin/time -f '%e %U %S' -o "$WORK/time" "$@" >"$WORK/$name.out"
  a1=$(az_cpu)
  read -r "fig[${name}_wall_s]" u s <"$WORK/time"
  fig[${name}_tool_cpu_s]=$(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')
  fig[${name}_azurite_cpu_s]=$(awk -v a="$a0" -v b="$a1" 'BEGIN { print b - a }')
}

# upload NAME: the local corpus put into the container by the tool (a
# rewrap by copy to key b, in its block layout); its MB/s kept.
upload() {
  measure "upload_$1" "$R" run --mode rewrap --to local:b --progress=none --threads "$THREADS" \
    --report "$WORK/up-$1.json" "$WORK/$1" --out "$U/$1"
  fig[upload_$1_mb_per_s]=$(jq -r '.mb_per_s' "$WORK/up-$1.json")
  rm -rf "${WORK:?}/$1"
}
say "== upload by the tool (run --out CONTAINER)"
for c in small big tiny huge counted; do upload "$c"; done

# ceiling NAME: blob_ceiling over the NAME prefix (put under
# bench-ceiling/NAME), one phase at a time (each measured).
ceiling() {
  local p f phases="download upload copy"
  # Big blobs also as the tool writes them (blocks of a record chunk, then
  # the block list): what staging costs the service, beside one Put Blob.
  [ "$1" = big ] && phases="$phases blockcopy"
  for p in $phases; do
    measure "ceil_$1_$p" "$CEIL" --threads "$THREADS" --phases "$p" \
      "$U/$1" "$AZ_URL_BASE/bench-ceiling/$1"
    for f in mb_per_s blobs_per_s; do
      fig[ceil_$1_${p}_$f]=$(jq -r ".$p.$f" "$WORK/ceil_$1_$p.out")
    done
  done
}
# rekey NAME: the tool's rekey in place of the NAME prefix.
rekey() {
  measure "rekey_$1" "$R" run --mode rekey --to local:c --progress=none --threads "$THREADS" \
    --report "$WORK/rekey-$1.json" "$U/$1"
  fig[rekey_$1_mb_per_s]=$(jq -r '.mb_per_s' "$WORK/rekey-$1.json")
  fig[rekey_$1_blobs_per_s]=$(jq -r '.blobs_per_s' "$WORK/rekey-$1.json")
  [ "$(jq -r '.blobs.done' "$WORK/rekey-$1.json")" -gt 0 ]
}
# verify NAME: the tool's verify of the NAME prefix (the read side alone:
# ranged GETs and the records opened), beside the ceiling's download.
verify() {
  measure "verify_$1" "$R" verify --progress=none --threads "$THREADS" \
    --report "$WORK/verify-$1.json" "$U/$1"
  fig[verify_$1_mb_per_s]=$(jq -r '.mb_per_s' "$WORK/verify-$1.json")
  fig[verify_$1_blobs_per_s]=$(jq -r '.blobs_per_s' "$WORK/verify-$1.json")
}
say "== small: ceiling, then the tool's rekey and verify"
ceiling small
rekey small
verify small
say "== big: ceiling, then the tool's rekey and verify"
ceiling big
rekey big
verify big
# The ceiling's copy left the big blobs under bench-ceiling/big as one Put
# Blob each (as another uploader puts them): a rewrap rewrites them whole,
# in the block layout, the first time.
say "== big, put in one piece: the first rewrap (rewritten whole)"
measure rewrap_onepiece "$R" run --mode rewrap --to local:d --progress=none --threads "$THREADS" \
  --report "$WORK/rewrap-onepiece.json" "$AZ_URL_BASE/bench-ceiling/big"
fig[rewrap_onepiece_mb_per_s]=$(jq -r '.mb_per_s' "$WORK/rewrap-onepiece.json")
fig[rewrap_onepiece_blobs_per_s]=$(jq -r '.blobs_per_s' "$WORK/rewrap-onepiece.json")

# Header-only rewrap: one blob at a time, so the time per blob is the
# blob's own (no overlap); every blob must have been done in place.
rewrap_one_by_one() {
  measure "rewrap_$1" "$R" run --mode rewrap --to local:d --progress=none --threads 1 \
    --report "$WORK/rewrap-$1.json" "$U/$1"
  [ "$(jq -r '.in_place' "$WORK/rewrap-$1.json")" = "$HUGE_COUNT" ] ||
    { say "rewrap of $1: not every blob was rewrapped header-only"; jq . "$WORK/rewrap-$1.json" >&2; exit 1; }
  fig[rewrap_$1_s_per_blob]=$(jq -r --argjson n "$HUGE_COUNT" '.seconds / $n' "$WORK/rewrap-$1.json")
}
say "== header-only rewrap: $HUGE_COUNT x 1 MiB, $HUGE_COUNT x $HUGE_MB MiB"
rewrap_one_by_one tiny
rewrap_one_by_one huge

# Requests per blob, through the counting proxy (not timed).
say "== requests per blob ($COUNTED blobs, through tests/e2e/blob_proxy.py)"
bp_start || { say "blob_proxy.py did not start"; exit 1; }
# per_blob N: the proxy's counters as {"GET -": requests / N, ...}, then zeroed.
per_blob() {
  bp_stats | jq -c --argjson n "$1" \
    '{requests: (with_entries(.value = (.value.requests / $n)) | . + {total: (to_entries | map(.value) | add)}),
      sent_bytes: (([.[] | .bytes] | add) / $n | floor), received_bytes: (([.[] | .resp_bytes] | add) / $n | floor)}'
  bp_clear || exit 1
}
bp_clear || exit 1
AZURE_STORAGE_CONNECTION_STRING=$BP_CONNECTION_STRING "$CEIL" --threads "$THREADS" \
  --phases copy "$BP_URL_BASE/bench/counted" "$BP_URL_BASE/bench-ceiling/counted" >/dev/null
req_ceil=$(per_blob "$COUNTED")
AZURE_STORAGE_CONNECTION_STRING=$BP_CONNECTION_STRING "$R" run --mode rekey --to local:c \
  --progress=none "$BP_URL_BASE/bench/counted" >/dev/null
req_rekey=$(per_blob "$COUNTED")
AZURE_STORAGE_CONNECTION_STRING=$BP_CONNECTION_STRING "$R" run --mode rewrap --to local:d \
  --progress=none "$BP_URL_BASE/bench/counted" >/dev/null
req_rewrap=$(per_blob "$COUNTED")
# What a header-only rewrap moves, 1 MiB against HUGE_MB blobs.
for c in tiny huge; do
  AZURE_STORAGE_CONNECTION_STRING=$BP_CONNECTION_STRING "$R" run --mode rewrap --to local:c \
    --threads 1 --progress=none "$BP_URL_BASE/bench/$c" >/dev/null
  printf '%s\n' "$(per_blob "$HUGE_COUNT")" >"$WORK/req-rewrap-$c.json"
done

# Everything must still open (not timed).
"$R" verify --progress=none "$U" >/dev/null

load=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$out" "$THREADS" "$req_ceil" "$req_rekey" "$req_rewrap" "$WORK/req-rewrap-tiny.json" \
  "$WORK/req-rewrap-huge.json" "$(nproc)" "$load" <<PY
import json, sys
f = {k: float(v) for k, v in dict($(for k in "${!fig[@]}"; do printf '%s=%s,' "$k" "${fig[$k]}"; done)).items()}
out, threads, cores, load = sys.argv[1], int(sys.argv[2]), int(sys.argv[8]), sys.argv[9]
req = {"ceiling copy": json.loads(sys.argv[3]), "rekey": json.loads(sys.argv[4]),
       "rewrap header-only": json.loads(sys.argv[5])}
moved = {"1 MiB": json.load(open(sys.argv[6])), "$HUGE_MB MiB": json.load(open(sys.argv[7]))}
n = {"small": $SMALL_COUNT, "big": $BIG_COUNT}
print(f"machine: {cores} cores (load average {load} at the end); Azurite is one Node process on the "
      f"same cores; {threads} threads for the tool and the ceiling")
print(f"upload by the tool (run --out, from local files): small {f['upload_small_mb_per_s']:.1f} MB/s, "
      f"big {f['upload_big_mb_per_s']:.1f} MB/s, $HUGE_MB MiB blobs {f['upload_huge_mb_per_s']:.1f} MB/s")
print()
print(f"{'':38} {'MB/s':>8} {'blobs/s':>8} {'wall s':>7} {'tool CPU s':>10} {'Azurite CPU s':>13} {'Azurite ms/blob':>15}")
def line(label, key, c):
    mb = f.get(f"{key}_mb_per_s", 0)
    bl = f.get(f"{key}_blobs_per_s", 0)
    az = f[f"{key}_azurite_cpu_s"]
    print(f"{label:38} {mb:8.1f} {bl:8.1f} {f[key + '_wall_s']:7.2f} {f[key + '_tool_cpu_s']:10.2f} "
          f"{az:13.2f} {az * 1000 / n[c]:15.2f}")
for c, label in (("small", "$SMALL_COUNT x $SMALL_KB KiB"), ("big", "$BIG_COUNT x $BIG_MB MiB")):
    print(label)
    for p in ("download", "upload", "copy", "blockcopy"):
        if f"ceil_{c}_{p}_wall_s" in f:
            line(f"  ceiling: {p}", f"ceil_{c}_{p}", c)
    line("  reencrypt run --mode rekey", f"rekey_{c}", c)
    line("  reencrypt verify", f"verify_{c}", c)
    if c == "big":
        line("  run --mode rewrap, one-piece blobs", "rewrap_onepiece", c)
print()
print(f"{'figure':34} {'measured':>10} {'unit':8} {'ceiling':>14} {'ratio':>7}   (rekey: of the copy ceiling)")
for c, label in (("small", "$SMALL_COUNT x $SMALL_KB KiB"), ("big", "$BIG_COUNT x $BIG_MB MiB")):
    for unit, k in (("MB/s", "mb_per_s"), ("blobs/s", "blobs_per_s")):
        v, ceil = f[f"rekey_{c}_{k}"], f[f"ceil_{c}_copy_{k}"]
        r = v / ceil if ceil else 0
        f[f"rekey_{c}_ratio"] = r
        print(f"{'rekey ' + label:34} {v:10.1f} {unit:8} {ceil:14.1f} {r * 100:6.1f}%  (target 80%: {'ok' if r >= 0.8 else 'BELOW'})")
    if c == "big":
        # The same bytes written the tool's way: blocks, then the list.
        v, ceil = f["rekey_big_mb_per_s"], f["ceil_big_blockcopy_mb_per_s"]
        f["rekey_big_blockcopy_ratio"] = v / ceil if ceil else 0
        print(f"{'rekey ' + label + ', as blocks':34} {v:10.1f} {'MB/s':8} {ceil:14.1f} {v / ceil * 100:6.1f}%  (of the blockcopy ceiling: the same bytes put as blocks + block list)")
        v, ceil = f["rewrap_onepiece_mb_per_s"], f["ceil_big_copy_mb_per_s"]
        f["rewrap_onepiece_ratio"] = v / ceil if ceil else 0
        print(f"{'rewrap ' + label + ', one piece':34} {v:10.1f} {'MB/s':8} {ceil:14.1f} {v / ceil * 100:6.1f}%  (rewritten whole, of the copy ceiling)")
    v, ceil = f[f"verify_{c}_mb_per_s"], f[f"ceil_{c}_download_mb_per_s"]
    f[f"verify_{c}_ratio"] = v / ceil if ceil else 0
    print(f"{'verify ' + label:34} {v:10.1f} {'MB/s':8} {ceil:14.1f} {v / ceil * 100:6.1f}%  (of the download ceiling)")
# Where the small blobs' time goes: Azurite's CPU per request is about the
# same for both, so the requests per blob set the pace Azurite allows.
rq_c, rq_r = req["ceiling copy"]["requests"]["total"], req["rekey"]["requests"]["total"]
az_c = f["ceil_small_copy_azurite_cpu_s"] * 1000 / n["small"]
az_r = f["rekey_small_azurite_cpu_s"] * 1000 / n["small"]
f["azurite_ms_per_request_copy"], f["azurite_ms_per_request_rekey"] = az_c / rq_c, az_r / rq_r
f["rekey_small_vs_request_bound"] = f["rekey_small_blobs_per_s"] / (f["ceil_small_copy_blobs_per_s"] * rq_c / rq_r)
print(f"small blobs: Azurite CPU per request {az_c / rq_c:.2f} ms (copy, {rq_c:g} requests a blob) and "
      f"{az_r / rq_r:.2f} ms (rekey, {rq_r:g} a blob); the copy ceiling scaled by {rq_c:g}/{rq_r:g} requests is "
      f"{f['ceil_small_copy_blobs_per_s'] * rq_c / rq_r:.1f} blobs/s, the rekey is at "
      f"{f['rekey_small_vs_request_bound'] * 100:.0f}% of it; tool CPU per blob "
      f"{f['rekey_small_tool_cpu_s'] * 1000 / n['small']:.2f} ms (ceiling copy "
      f"{f['ceil_small_copy_tool_cpu_s'] * 1000 / n['small']:.2f} ms)")
t, h = f["rewrap_tiny_s_per_blob"], f["rewrap_huge_s_per_blob"]
f["rewrap_size_ratio"] = h / t
print(f"header-only rewrap, --threads 1: 1 MiB {t * 1000:.1f} ms/blob, $HUGE_MB MiB {h * 1000:.1f} ms/blob: "
      f"{h / t:.2f}x (target under 2x: {'ok' if h / t < 2 else 'OVER'})")
for k, v in moved.items():
    print(f"  a header-only rewrap of a {k} blob sends {v['sent_bytes']} bytes and receives {v['received_bytes']} bytes")
print()
for k, v in req.items():
    print(f"requests per blob, {k:19} " + ", ".join(f"{a} {x:g}" for a, x in sorted(v["requests"].items())))
json.dump({"figures": f, "requests_per_blob": req, "header_only_rewrap_bytes": moved,
           "threads": threads, "cores": cores, "load_average": load}, open(out, "w"), indent=2)
print(f"results: {out}")
PY
