#!/usr/bin/env bash
# bench/pg_journal.sh — the PostgreSQL journal's throughput against a local
# PostgreSQL 15 (started here, fsync on, stopped after), beside the tool's
# small-blob rate: can the journal keep up with many machines?
#
#   bench/pg_journal.sh                          (100000 blobs; 1 and 4 workers; batch 512)
#   COUNT=20000 WORKERS="4" BATCH=64 bench/pg_journal.sh
#
# Results to stdout, one JSON line per configuration (bench/pg_journal.c);
# then the tool itself: one worker's rekey of SMALL_COUNT x 16 KiB blobs
# with the same journal (the single-machine small-blob rate), and the
# ratio of the journal's rate with the most workers to it (the target:
# at least 10, so that ten machines do not make the journal the bound).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-100000}
WORKERS=${WORKERS:-"1 4"}
BATCH=${BATCH:-512}
SMALL_COUNT=${SMALL_COUNT:-20000}
scripts/bootstrap.sh >/dev/null
dir=$(scripts/build.sh bench | tail -n 1)
B=$PWD/$dir/bench/pg_journal
R=$PWD/$dir/reencrypt/reencrypt
MK=$PWD/$dir/bench/mkcorpus
work=$(mktemp -d /var/tmp/renc-bench-pg.XXXXXX)
. tests/e2e/pglib.sh
trap 'pg_stop; rm -rf "$work"' EXIT
pg_start "$work/pg" || exit $?
for w in $WORKERS; do
  "$B" "$PG_URI#run=bench$w" "$COUNT" "$w" "$BATCH" | tee "$work/journal-$w.json"
done
export RENC_HOME=$work/state
"$R" keys create a >/dev/null
"$R" keys create b >/dev/null
"$MK" "$RENC_HOME/keyring" local:a "$SMALL_COUNT" 16384 "$work/small" 1000 >/dev/null
sync
start=$(date +%s.%N)
"$R" run --to local:b --mode rekey --progress=none --journal "$PG_URI" --run tool "$work/small" \
  >"$work/tool.out"
end=$(date +%s.%N)
last=$(echo $WORKERS | awk '{print $NF}')
python3 - "$work/journal-$last.json" "$SMALL_COUNT" "$start" "$end" "$last" <<'PY'
import json, sys
j = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
n, secs, w = int(sys.argv[2]), float(sys.argv[4]) - float(sys.argv[3]), sys.argv[5]
tool = n / secs
rate = j.get("blobs_per_s") or j.get("claimed_noted_per_s") or j.get("rate")
print(f"the tool, one worker, {n} x 16 KiB rekey with this journal: {tool:,.0f} blobs/s")
print(f"the journal with {w} workers: {rate:,.0f} blobs/s = {rate / tool:.1f}x the tool's rate "
      f"(target >= 10x)")
print(json.dumps({"tool_blobs_per_s": round(tool), "journal_blobs_per_s": rate,
                  "journal_workers": int(w), "ratio": round(rate / tool, 2)}))
PY
