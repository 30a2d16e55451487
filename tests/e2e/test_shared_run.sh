#!/usr/bin/env bash
# tests/e2e/test_shared_run.sh — one run shared by many workers through a
# PostgreSQL journal (docs/SCALE.md), against a real server (PostgreSQL 15
# from Debian's packages, made by initdb in this test's folder on a private
# socket, stopped after):
#   - four workers start together on one run; two are SIGKILLed at a
#     commit in the middle of their work (the fault seam), three more at
#     random moments by the test, and a new one started for each; with a
#     3-second lease, the dead workers' claims go to the others;
#   - at the end: the run is finished (every blob done or skipped, none
#     pending or failed), no lease is left (asked of the server with psql),
#     every blob opens under the target key alone to its original plaintext
#     (the independent reader, hash-compared), every blob was committed
#     exactly once (the kernel's count of renames onto each name, by
#     inotify, and the journal agree), no temporaries are left, and the
#     last worker's --report is the merged run (every worker listed);
#   - a worker frozen (SIGSTOP) past its lease while another finishes its
#     blobs, then woken: its commits and notes change nothing; every blob
#     committed exactly once and whole;
#   - status --run shows each worker; a rewrap with header writes in place
#     by three workers; bad combinations refused;
#   - the same kill test with --shard K/N and journal files: four shards,
#     three kills, each killed shard run again until it finishes; every
#     blob committed exactly once, every journal finished;
#   - run --env ID --journal postgresql://: two workers share the
#     environment's run (env-ID).
# Skipped (77) when PostgreSQL's server binaries are not installed.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RENC_BIN=$(realpath "$RENC_BIN")
. "$RENC_TESTS_DIR/e2e/pglib.sh"
WATCH_PID=
trap '[ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null; pkill -9 -P $$ 2>/dev/null;
      pg_stop; chmod -R u+rwx "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
pg_start "$WORK/pg" nosync || exit $?
J=$PG_URI
sql() { psql -X -A -t -q -d "$PG_URI" -c "$1"; }

. "$RENC_TESTS_DIR/e2e/shardlib.sh"
N=${RENC_SHARED_N:-1600}
shard_corpus "$N" 6 100
TREE=$WORK/tree
cp -a "$SRC" "$TREE" || exit 2
(cd "$TREE" && find . -type f -printf '%P\n' | LC_ALL=C sort) >"$WORK/all.lst"
check "the corpus has $N blobs" [ "$(wc -l <"$WORK/all.lst")" -eq "$N" ]

# ---- refused combinations -------------------------------------------------------
expect_exit 2 renc run --to local:t --journal "$J" --shard 0/2 "$TREE"
expect_msg "split it by claims, not shards"
expect_exit 2 renc run --to local:t --journal "$J" --out "$WORK/o" "$TREE"
expect_msg "works in place"

# ---- four workers, SIGKILLed at random, replaced -----------------------------------
watch_commits "$TREE" "$WORK/commits.tsv"

export RENC_JOURNAL_LEASE=3
declare -A PIDS KILLED
# worker ID [FAULT]: a worker of the run; FAULT (RENC_FAULT) kills it with
# SIGKILL at its N-th commit, in the middle of its work by construction.
worker() {
  env ${2:+RENC_FAULT=$2} "$RENC_BIN" run --state "$STATE" --to local:t --mode rekey \
    --journal "$J" --run kill --threads 1 --progress=none --report "$WORK/rep$1.json" "$TREE" \
    >"$WORK/w$1.out" 2>"$WORK/w$1.err" &
  PIDS[$1]=$!
}
worker 0 commit:20:KILL
worker 1 commit:35:KILL
worker 2
worker 3
KILLED[0]=1
KILLED[1]=1
next=4 kills=0 mid=0
RANDOM=${RENC_SHARED_SEED:-$$}
# Three more kills at random moments, by the test (a worker the fault seam
# was to kill may get too few blobs to reach its commit); every killed worker is
# replaced by a new one.
while [ $kills -lt 3 ]; do
  sleep "0.$((1 + RANDOM % 4))"
  # Only a worker that has joined (said so, once its row is in the
  # journal): one killed before it joins is in no list to check.
  live=() alive=0
  for w in "${!PIDS[@]}"; do
    # Running, not a zombie (kill -0 succeeds on one that has ended).
    [ -z "${KILLED[$w]:-}" ] && [ "$(awk '{print $3}' "/proc/${PIDS[$w]}/stat" 2>/dev/null)" != "" ] &&
      [ "$(awk '{print $3}' "/proc/${PIDS[$w]}/stat" 2>/dev/null)" != Z ] || continue
    alive=$((alive + 1))
    grep -Eq "worker [0-9]+ (starts|joins) run" "$WORK/w$w.out" && live+=("$w")
  done
  [ $alive -gt 0 ] || break
  [ ${#live[@]} -gt 0 ] || continue
  victim=${live[$((RANDOM % ${#live[@]}))]}
  pending=$(sql "SELECT count(*) FROM blobs WHERE run = 'kill' AND state = 'pending'")
  kill -9 "${PIDS[$victim]}" 2>/dev/null && kills=$((kills + 1))
  [ "${pending:-0}" -gt 0 ] && mid=$((mid + 1))
  echo "killed worker $victim with ${pending:-?} blobs pending; started worker $next"
  KILLED[$victim]=1
  worker $next
  next=$((next + 1))
done
# The two to be killed at a commit are replaced once they are gone (one
# that got no blobs to commit ends normally: not counted as killed).
for w in 0 1; do
  wait "${PIDS[$w]}"
  rc=$?
  unset "PIDS[$w]"
  if [ $rc -eq 137 ]; then
    kills=$((kills + 1))
    worker $next
    next=$((next + 1))
  else
    unset "KILLED[$w]"
    check "worker $w, not killed, exits 0 (got $rc)" [ $rc -eq 0 ]
  fi
done
check "at least 2 workers killed (got $kills), at least one by the test with blobs still to do ($mid)" \
  [ $kills -ge 2 -a $mid -ge 1 ]
ok=1
for w in "${!PIDS[@]}"; do
  wait "${PIDS[$w]}"
  rc=$?
  if [ -n "${KILLED[$w]:-}" ]; then
    [ $rc -eq 137 ] || { ok=0; echo "killed worker $w exited $rc" >&2; }
  else
    [ $rc -eq 0 ] || { ok=0; echo "worker $w exited $rc:" >&2; tail -5 "$WORK/w$w.err" >&2; }
  fi
done
check "the surviving workers exit 0, the killed ones were killed" [ $ok -eq 1 ]
watch_end

expect_ok renc status --journal "$J" --run kill --json
cp "$WORK/out" "$WORK/status.json"
check "the run is finished: none pending or failed, $N done or skipped" \
  [ "$(jq -r '"\(.state) \(.blobs.pending) \(.blobs.failed) \(.blobs.done + .blobs.skipped)"' \
    "$WORK/status.json")" = "finished 0 0 $N" ]
check "status lists the $next workers" [ "$(jq '.workers | length' "$WORK/status.json")" -eq $next ]
check "no lease is left on the server" \
  [ "$(sql "SELECT count(*) FROM blobs WHERE run = 'kill' AND (lease_until IS NOT NULL OR claimed_by IS NOT NULL)")" = 0 ]
check "every blob was committed exactly once (the kernel saw $(wc -l <"$WORK/commits.tsv") names renamed onto)" \
  committed_once "$WORK/commits.tsv" "$WORK/all.lst"
check "the journal agrees: done + skipped (committed by a worker killed before its note) = $N commits" \
  [ "$(jq -r '.blobs.done + .blobs.skipped' "$WORK/status.json")" -eq "$(wc -l <"$WORK/commits.tsv")" ]
last=$(ls -t "$WORK"/rep*.json | head -n 1)
check "the last worker's report is the merged run: $N blobs, every worker" \
  [ "$(jq -r '"\(.blobs.total) \(.blobs.done + .blobs.skipped) \(.blobs.failed) \(.workers | length) \(.running)"' "$last")" = "$N $N 0 $next false" ]
check "the $kills killed workers never ended; the others finished" \
  [ "$(jq -r '[.workers[] | select(.outcome == "")] | length' "$last")" -eq $kills ]
all_under "$TREE" local:t/1 $N "run by killed workers"
expect_ok renc status --journal "$J" --run kill
expect_out "workers   0 live" "finished"
# A worker started after the run finished joins it and finds nothing to do.
expect_ok renc run --to local:t --mode rekey --journal "$J" --run kill --progress=none "$TREE"
expect_out "this worker: 0 blobs re-encrypted" "$N of $N blobs finished"

# ---- a worker frozen past its lease, woken after another finished its blobs -------
FTREE=$WORK/ftree
cp -a "$SRC" "$FTREE"
watch_commits "$FTREE" "$WORK/fcommits.tsv"
frozen() {
  "$RENC_BIN" run --state "$STATE" --to local:t --mode rekey --journal "$J" --run frozen \
    --threads 1 --progress=none "$FTREE" >"$WORK/f$1.out" 2>"$WORK/f$1.err" &
}
frozen 0
FPID=$!
for _ in $(seq 1 600); do
  [ "$(sql "SELECT count(*) FROM blobs WHERE run = 'frozen' AND state = 'done'")" -ge 50 ] && break
  sleep 0.05
done
kill -STOP "$FPID"
frozen 1
GPID=$!
wait "$GPID"
rc=$?
check "a second worker, started while the first is frozen, takes its blobs when its lease lapses and exits 0 (got $rc)" \
  [ $rc -eq 0 ]
kill -CONT "$FPID"
wait "$FPID"
watch_end
expect_ok renc status --journal "$J" --run frozen --json
check "the frozen worker's notes, woken late, changed nothing: $N done or skipped, none failed" \
  [ "$(jq -r '"\(.state) \(.blobs.done + .blobs.skipped) \(.blobs.failed)"' "$WORK/out")" = "finished $N 0" ]
check "every blob of the frozen run was committed exactly once" \
  committed_once "$WORK/fcommits.tsv" "$WORK/all.lst"
all_under "$FTREE" local:t/1 $N "a frozen worker woken late"

# ---- a rewrap by three workers, headers rewritten in place ------------------------
renc keys create t2 >/dev/null
for w in 0 1 2; do
  "$RENC_BIN" run --state "$STATE" --to local:t2 --journal "$J" --run wrap --threads 2 \
    --progress=none "$TREE" >"$WORK/x$w.out" 2>"$WORK/x$w.err" &
  PIDS[x$w]=$!
done
ok=1
for w in 0 1 2; do wait "${PIDS[x$w]}" || { ok=0; tail -5 "$WORK/x$w.err" >&2; }; done
check "three rewrap workers exit 0" [ $ok -eq 1 ]
check "the rewrap rewrote headers in place (header intents went through the server)" \
  [ "$(cat "$WORK"/x[012].out | grep -c 'this worker')" -eq 3 ]
refs=$(slot_refs "$TREE")
check "every blob is under t2 alone (got: $refs)" [ "$refs" = "local:t2/1 $N" ]
check "no header intent is left" [ "$(sql "SELECT count(*) FROM header_intents")" = 0 ]
expect_ok renc verify "$TREE"

# ---- the same with --shard K/N and journal files: shards killed and rerun -----------
STREE=$WORK/stree
cp -a "$SRC" "$STREE"
watch_commits "$STREE" "$WORK/scommits.tsv"
shard() {
  "$RENC_BIN" run --state "$STATE" --to local:t --mode rekey --shard "$1/4" --threads 1 \
    --progress=none --report "$WORK/srep$1.json" "$STREE" >"$WORK/s$1.out" 2>"$WORK/s$1.err" &
  SPIDS[$1]=$!
}
declare -A SPIDS
for k in 0 1 2 3; do shard $k; done
skills=0
for round in 1 2 3; do
  sleep "0.$((2 + RANDOM % 5))"
  k=$((RANDOM % 4))
  if kill -9 "${SPIDS[$k]}" 2>/dev/null; then
    wait "${SPIDS[$k]}" 2>/dev/null
    skills=$((skills + 1))
    echo "killed shard $k/4 (round $round); started it again"
    shard $k
  fi
done
ok=1
for k in 0 1 2 3; do wait "${SPIDS[$k]}" || { ok=0; tail -3 "$WORK/s$k.err" >&2; }; done
check "the last run of each shard exits 0 ($skills shard runs killed on the way)" [ $ok -eq 1 ]
watch_end
sdone=0
for k in 0 1 2 3; do
  j=$(jq -r .journal "$WORK/srep$k.json")
  expect_ok renc status --journal "$j" --json
  check "shard $k's journal: finished, none pending or failed" \
    [ "$(jq -r '"\(.state) \(.blobs.pending) \(.blobs.failed)"' "$WORK/out")" = "finished 0 0" ]
  sdone=$((sdone + $(jq -r '.blobs.done + .blobs.skipped' "$WORK/out")))
done
check "the shards' journals hold $N blobs done or skipped (got $sdone)" [ "$sdone" -eq "$N" ]
check "every blob of the sharded tree was committed exactly once" \
  committed_once "$WORK/scommits.tsv" "$WORK/all.lst"
expect_no_temporaries "shards killed and rerun" "$STREE"
if have_pycheck; then
  check "every blob of the sharded tree opens with the target's key alone, to its plaintext" \
    shard_opens "$STREE" local:t/1
fi

# ---- an environment's run shared by two workers ------------------------------------
mkdir -p "$WORK/eplain"
for i in $(seq 1 300); do printf 'env blob %d' "$i" >"$WORK/eplain/e$i"; done
renc env create shared >/dev/null
renc put --env shared "$WORK/eplain" >/dev/null
renc keys create cmk >/dev/null
expect_ok renc env set-policy shared --cmk local:cmk
for w in 0 1; do
  "$RENC_BIN" run --state "$STATE" --env shared --journal "$J" --progress=none \
    >"$WORK/e$w.out" 2>"$WORK/e$w.err" &
  PIDS[e$w]=$!
done
ok=1
for w in 0 1; do wait "${PIDS[e$w]}" || { ok=0; tail -5 "$WORK/e$w.err" >&2; }; done
check "two workers of run --env --journal postgresql:// exit 0" [ $ok -eq 1 ]
check "they shared one run named env-shared" \
  [ "$(sql "SELECT count(*) FROM workers WHERE run = 'env-shared'")" = 2 ]
check "its 300 blobs are done in the journal" \
  [ "$(sql "SELECT count(*) FROM blobs WHERE run = 'env-shared' AND state = 'done'")" = 300 ]
# Each worker says the environment's state when it ends; the last to end
# sees every blob done.  (That a worker ending first once said "warning",
# in one of several runs, is under investigation: the environment's state
# after both is what is asserted.)
check "each worker says the environment's state" \
  [ "$(cat "$WORK"/e[01].out | grep -c 'environment shared is ')" -eq 2 ]
check "one worker, the last, says the environment is encrypted" \
  [ "$(cat "$WORK"/e[01].out | grep -c 'environment shared is encrypted')" -ge 1 ]
expect_ok renc env show shared --json
check "after both workers the environment is encrypted, its 300 blobs under its CMK" \
  [ "$(jq -r '[.blobs.count, .status] | join(" ")' "$WORK/out")" = "300 encrypted" ]
refs=$(slot_refs "$STATE/data/shared")
check "the environment's blobs are under its CMK alone (got: $refs)" [ "$refs" = "local:cmk/1 300" ]
finish
