#!/usr/bin/env bash
# bench/pg_journal.sh — the PostgreSQL journal's throughput against a local
# PostgreSQL 15 (started here, fsync on, stopped after), beside the tool's
# small-blob rate: can the journal keep up with many machines?
#
#   bench/pg_journal.sh                          (100000 blobs; 1 and 4 workers; batch 256)
#   COUNT=20000 WORKERS="4" BATCH=64 bench/pg_journal.sh
#
# Results to stdout, one JSON line per configuration (bench/pg_journal.c).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-100000}
WORKERS=${WORKERS:-"1 4"}
BATCH=${BATCH:-256}
scripts/bootstrap.sh >/dev/null
dir=$(scripts/build.sh bench | tail -n 1)
B=$PWD/$dir/bench/pg_journal
work=$(mktemp -d /var/tmp/renc-bench-pg.XXXXXX)
. tests/e2e/pglib.sh
trap 'pg_stop; rm -rf "$work"' EXIT
pg_start "$work/pg" || exit $?
for w in $WORKERS; do
  "$B" "$PG_URI#run=bench$w" "$COUNT" "$w" "$BATCH"
done
