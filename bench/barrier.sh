#!/usr/bin/env bash
# The small-blob durability barriers side by side: `run --barrier file`
# (an fsync per new file, all in flight through the ring, each directory
# synced once a batch) against `--barrier batch` (one syncfs for a batch's
# new files, one for its renames), on the same corpus, alternating, so that
# a change of the machine's load falls on both.
#
#   bench/barrier.sh                       (20000 x 16 KiB, 3 rounds)
#   SMALL_COUNT=5000 ROUNDS=2 bench/barrier.sh
#   THREADS=1 bench/barrier.sh             (--threads)
#
# Each round: a rekey in place of the whole corpus in each mode (the target
# key alternates, so every blob is rewritten every time), and the bare file
# work (--bench-identity: every step but the crypto) in each mode.  Prints
# blobs/s per run and the median per mode; JSON to $RENC_BENCH_OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
SMALL_COUNT=${SMALL_COUNT:-20000}
SMALL_KB=${SMALL_KB:-16}
ROUNDS=${ROUNDS:-3}
MEMORY=${MEMORY:-256M}
THREADS=${THREADS:-$(nproc)}

dir=${RENC_BENCH_BUILD:-$(scripts/build.sh bench | tail -n 1)}
R=$PWD/$dir/reencrypt/reencrypt
MK=$PWD/$dir/bench/mkcorpus

work=${RENC_BENCH_DIR:-$(mktemp -d /var/tmp/renc-barrier.XXXXXX)}
trap 'rm -rf "$work"' EXIT
export RENC_HOME=$work/state
out=${RENC_BENCH_OUT:-$work/barrier.json}
say() { printf '%s\n' "$*" >&2; }

"$R" keys create a >/dev/null
"$R" keys create b >/dev/null
say "== $SMALL_COUNT x $SMALL_KB KiB under $work ($(df -T "$work" | awk 'NR==2{print $2}')), $THREADS threads"
"$MK" "$RENC_HOME/keyring" local:a "$SMALL_COUNT" $((SMALL_KB << 10)) "$work/small" 1000 >/dev/null
sync

declare -A runs
target=b
# one KIND MODE: one whole run; its blobs/s appended to runs[KIND-MODE].
one() {
  local kind=$1 mode=$2 args=(--to "local:$target" --mode rekey)
  [ "$kind" = filework ] && args=(--to local:a --bench-identity)
  "$R" run "${args[@]}" --barrier "$mode" --threads "$THREADS" --progress=none \
    --memory "$MEMORY" --no-journal --report "$work/r.json" "$work/small" >/dev/null
  local bps
  bps=$(jq -r '.blobs_per_s|round' "$work/r.json")
  runs[$kind-$mode]="${runs[$kind-$mode]:-} $bps"
  say "  $kind --barrier $mode: $bps blobs/s (load $(cut -d' ' -f1 /proc/loadavg))"
  [ "$kind" = rekey ] && { [ $target = b ] && target=a || target=b; }
  return 0
}

for ((r = 1; r <= ROUNDS; r++)); do
  say "== round $r"
  for kind in rekey filework; do
    # Alternate which mode goes first.
    if ((r % 2)); then one $kind file; one $kind batch; else one $kind batch; one $kind file; fi
  done
done

median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
{
  printf '{"small_count": %d, "small_kb": %d, "threads": %d' "$SMALL_COUNT" "$SMALL_KB" "$THREADS"
  for k in rekey-file rekey-batch filework-file filework-batch; do
    m=$(echo "${runs[$k]}" | median)
    printf ', "%s_blobs_per_s": %d, "%s_runs": [%s]' "${k/-/_}" "$m" "${k/-/_}" \
      "$(echo "${runs[$k]}" | sed 's/^ //; s/ /, /g')"
    say "$k: median $m blobs/s (runs:${runs[$k]})"
  done
  printf '}\n'
} >"$out"
cat "$out"
