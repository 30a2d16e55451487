#!/usr/bin/env bash
# tests/e2e/test_journal_pg.sh — the PostgreSQL journal against a real
# server: PostgreSQL 15 from Debian's packages, made by initdb in this
# test's folder, listening on a private Unix socket only, stopped after;
# runs tests/unit/test_journal_pg.c's binary against it (RENC_PG_URI), then
# the real binary with --journal postgresql://...: a worker stopped by a
# failed write and a second worker that joins the run and does the rest,
# status from the server, and a location with a password refused without
# being echoed.  (Many workers at once, killed: test_shared_run.sh.)
# Skipped (77) when PostgreSQL's server binaries are not installed.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
TESTBIN=$(dirname "$(realpath "$RENC_BIN")")/../tests/test_journal_pg
[ -x "$TESTBIN" ] || { echo "no $TESTBIN" >&2; exit 2; }
. "$RENC_TESTS_DIR/e2e/pglib.sh"
trap 'pg_stop; chmod -R u+rwx "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
pg_start "$WORK/pg" nosync || exit $?
export RENC_PG_URI=$PG_URI
run "$TESTBIN"
check "the PostgreSQL journal's tests pass against the server" [ "$RC" -eq 0 ]
[ "$RC" -eq 0 ] || cat "$WORK/out" "$WORK/err" >&2
cat "$WORK/out" "$WORK/err" >"$WORK/all"
grep -q "PASSED.*5 test" "$WORK/all" && pass "all 5 ran" || fail "not all 5 ran: $(tail -3 "$WORK/all")"
grep -q "SKIPPED" "$WORK/all" && fail "some were skipped"

# ---- the binary with a PostgreSQL journal (one worker) ---------------------------
. "$RENC_TESTS_DIR/e2e/shardlib.sh"
N=60
shard_corpus $N 3 100
cp -a "$SRC" "$WORK/tree"
J="$RENC_PG_URI#run=e2e"
expect_exit 1 env RENC_FAULT=write:5:EIO "$RENC_BIN" run --state "$STATE" --to local:t \
  --mode rekey --journal "$J" --progress=none "$WORK/tree"
expect_ok renc status --journal "$J" --json
check "status from the server: one failed, the rest done" \
  [ "$(jq -r '"\(.blobs.done) \(.blobs.failed) \(.state)"' "$WORK/out")" = "$((N - 1)) 1 failed" ]
expect_ok renc run --to local:t --mode rekey --journal "$J" --progress=none --report "$WORK/r.json" \
  "$WORK/tree"
expect_out "joins run" "this worker: 1 blobs re-encrypted" "$N of $N blobs finished"
check "the second worker re-encrypted the one left; the merged report has them all" \
  [ "$(jq -r '"\(.this_worker.done) \(.blobs.done)"' "$WORK/r.json")" = "1 $N" ]
check "every blob is under the target alone" [ "$(slot_refs "$WORK/tree")" = "local:t/1 $N" ]
expect_ok renc status --journal "$J"
expect_out "finished" "$N of $N blobs finished"
check "nothing the server says was printed" bash -c '! grep -qi "notice" "$1"' _ "$WORK/err"
expect_exit 2 renc run --to local:t --journal "postgresql://renc:secretpw@localhost/db" "$WORK/tree"
expect_msg "password in the journal's location is refused" "PGPASSWORD"
check "the password is not echoed" bash -c '! grep -q secretpw "$1" "$2"' _ "$WORK/err" "$WORK/out"
finish
