#!/usr/bin/env bash
# Benchmark of what the journal costs and what in-place header rewrap buys.
#
#   bench/journal.sh                        (20000 x 16 KiB; 8 x 256 MiB; 8 x 1 GiB)
#   SMALL_COUNT=2000 BIG_COUNT=2 bench/journal.sh      (a quick one)
#
# 1. The journal's cost: rekey of the small-blob corpus with the journal and
#    with --no-journal, alternated REPS times on fresh copies; the ratio of
#    the best of each.
# 2. In-place header rewrap: rewrap of BIG_COUNT blobs of 256 MiB and of
#    1 GiB (blobs/s, and the same rewrap by copy beside it for 256 MiB):
#    the in-place time must not grow with the blob size.
# Results go to stdout and, as JSON, to $RENC_BENCH_OUT (default
# bench-journal.json in the current directory).
set -euo pipefail
cd "$(dirname "$0")/.."
SMALL_COUNT=${SMALL_COUNT:-20000}
SMALL_KB=${SMALL_KB:-16}
BIG_COUNT=${BIG_COUNT:-8}
REPS=${REPS:-3}
MEMORY=${MEMORY:-256M}

scripts/bootstrap.sh >/dev/null
dir=$(scripts/build.sh bench | tail -n 1)
R=$PWD/$dir/reencrypt/reencrypt
MK=$PWD/$dir/bench/mkcorpus

work=${RENC_BENCH_DIR:-$(mktemp -d /var/tmp/renc-bench-journal.XXXXXX)}
trap 'rm -rf "$work"' EXIT
export RENC_HOME=$work/state
out=${RENC_BENCH_OUT:-$PWD/bench-journal.json}
say() { printf '%s\n' "$*" >&2; }

for k in a b c d; do "$R" keys create $k >/dev/null; done

say "== 1. the journal's cost: $SMALL_COUNT x $SMALL_KB KiB, rekey, $REPS rounds"
"$MK" "$RENC_HOME/keyring" local:a "$SMALL_COUNT" $((SMALL_KB << 10)) "$work/small" 1000
with=() without=()
for i in $(seq 1 "$REPS"); do
  for mode in journal none; do
    rm -rf "$work/s"
    cp -r "$work/small" "$work/s"
    sync
    if [ $mode = journal ]; then
      "$R" run --to local:b --mode rekey --progress=none --memory "$MEMORY" \
        --journal "$work/j$i.db" --report "$work/r.json" "$work/s" >/dev/null
      with+=("$(jq -r .blobs_per_s "$work/r.json")")
    else
      "$R" run --to local:b --mode rekey --progress=none --memory "$MEMORY" --no-journal \
        --report "$work/r.json" "$work/s" >/dev/null
      without+=("$(jq -r .blobs_per_s "$work/r.json")")
    fi
    say "   round $i, $mode: $(jq -r '.blobs_per_s|round' "$work/r.json") blobs/s"
  done
done
rm -rf "$work/s" "$work/small"

say "== 2. in-place header rewrap"
big_round() { # NAME SIZE_MB
  "$MK" "$RENC_HOME/keyring" local:a "$BIG_COUNT" $(($2 << 20)) "$work/$1" 1000
  sync
  "$R" run --to local:c --progress=none --memory "$MEMORY" --report "$work/$1-inplace.json" \
    "$work/$1" >/dev/null
  test "$(jq -r .in_place "$work/$1-inplace.json")" = "$BIG_COUNT"
}
big_round big256 256
# The same corpus rewrapped by copy (to another key), for comparison.
"$R" run --to local:d --copy --progress=none --memory "$MEMORY" --report "$work/big256-copy.json" \
  "$work/big256" >/dev/null
"$R" verify --progress=none "$work/big256" >/dev/null
rm -rf "$work/big256"
big_round big1g 1024
"$R" verify --progress=none "$work/big1g" >/dev/null
rm -rf "$work/big1g"

python3 - "$out" "$work" "$BIG_COUNT" "${with[*]}" "${without[*]}" <<'PY'
import json, sys
out, work, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
w = [float(x) for x in sys.argv[4].split()]
wo = [float(x) for x in sys.argv[5].split()]
ld = lambda f: json.load(open(f"{work}/{f}"))
i256, c256, i1g = ld("big256-inplace.json"), ld("big256-copy.json"), ld("big1g-inplace.json")
r = {
    "small_with_journal_blobs_per_s": max(w), "small_without_journal_blobs_per_s": max(wo),
    "small_rounds_with": w, "small_rounds_without": wo,
    "journal_ratio": max(w) / max(wo),
    "inplace_256mib_blobs_per_s": i256["blobs_per_s"], "inplace_256mib_seconds": i256["seconds"],
    "copy_256mib_blobs_per_s": c256["blobs_per_s"], "copy_256mib_seconds": c256["seconds"],
    "inplace_1gib_blobs_per_s": i1g["blobs_per_s"], "inplace_1gib_seconds": i1g["seconds"],
}
json.dump(r, open(out, "w"), indent=2)
print(f"journal cost, {len(w)} rounds each (best of each):")
print(f"  rekey small blobs with the journal    {max(w):8.0f} blobs/s   rounds {', '.join(f'{x:.0f}' for x in w)}")
print(f"  rekey small blobs with --no-journal   {max(wo):8.0f} blobs/s   rounds {', '.join(f'{x:.0f}' for x in wo)}")
ok = "met" if r["journal_ratio"] >= 0.9 else "NOT met"
print(f"  with / without                        {r['journal_ratio']*100:8.1f} %   (target 90%: {ok})")
print(f"in-place header rewrap of {n} blobs:")
print(f"  256 MiB blobs, header in place        {i256['blobs_per_s']:8.1f} blobs/s   {i256['seconds']:.3f} s")
print(f"  1 GiB blobs, header in place          {i1g['blobs_per_s']:8.1f} blobs/s   {i1g['seconds']:.3f} s")
print(f"  256 MiB blobs, rewrap by copy         {c256['blobs_per_s']:8.1f} blobs/s   {c256['seconds']:.3f} s")
grow = i1g["seconds"] / i256["seconds"] if i256["seconds"] else 0
print(f"  in-place time, 1 GiB / 256 MiB blobs  {grow:8.2f} x   (blob size x4)")
PY
say "results: $out"
