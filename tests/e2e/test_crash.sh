#!/usr/bin/env bash
# tests/e2e/test_crash.sh — `run` killed (SIGKILL) at chosen points and
# resumed: no blob is ever lost, the resumed run finishes the work, and the
# journal agrees.
#
# Configurations: corpus {big: three blobs of 5-6 MiB with 64 KiB segments,
# one compressed; small: 150 blobs of 1-20 KiB} x {rekey, rewrap through a
# copy (--copy), rewrap by an in-place header rewrite} x {in place, --out DIR}
# (an in-place header rewrite with --out is a copy: skipped), so ten; and
# the big corpus's rekey in place with --direct (O_DIRECT both ways, its
# default workers and chunks in flight), where the work directory's
# filesystem takes O_DIRECT: eleven.
#
# Per configuration the fault seam's operations of a whole run are counted
# first (writes, durability barriers, journal commits: RENC_FAULT=OP:N:KILL
# dies before the N-th, so the count is the largest N that still kills), then
# each kill point restores the pristine corpus, runs with one kill — at the
# N-th write, barrier or journal commit, N spread over the count, or with a
# SIGKILL after a random delay within a whole run's time — and runs the same
# command again without it, which must finish: exit 0, every blob (in place:
# the source; --out: the mirror) under the target only and opening to its
# original plaintext, the source untouched with --out, no temporaries, the
# resumed run's counts covering every file once, and `status --json` saying
# finished with nothing pending, failed or left in the header intents.
# A point whose run ended without being killed is retried with an earlier
# one (and not counted).
#
# Then torn headers: an in-place header run killed after its intents are
# durable and some headers written; the first (or the second) 512-byte sector
# of a rewritten header is put back to the original's, which a crash in the
# middle of the write could leave; the resumed run must complete it from the
# journal.  A crash during that recovery.  A rewritten header then changed by
# someone else (neither old nor new): its intent is settled as replaced,
# nothing is written onto it, and nothing holds a rerun or --restart back.  And kills while SQLite makes a
# new journal (with strace's fault injection, when strace is there): the next
# run must not find a journal it refuses.
#
# About 2.5 minutes with 5 kill points per configuration on 2 cores (the
# count of operations costs a few whole runs per configuration); the full
# set of 20, about 8 minutes.
#
# RENC_CRASH_POINTS (default 5) kill points per configuration; the full set:
#   scripts/crashtest-full.sh          (RENC_CRASH_POINTS=20)
# RENC_CRASH_SEED makes the points repeatable (the seed used is printed).
# RENC_CRASH_ONLY=ERE runs only the configurations whose name matches.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/crashlib.sh"

T0=$SECONDS
RENC_BIN=$(realpath "$RENC_BIN")
cd "$WORK" || exit 2
sanitizer_logs

POINTS=${RENC_CRASH_POINTS:-5}
SEED=${RENC_CRASH_SEED:-$(((RANDOM << 15) | RANDOM))}
RANDOM=$SEED
echo "kill points per configuration: $POINTS; RENC_CRASH_SEED=$SEED"
# The --barrier of the configurations: RENC_CRASH_BARRIER, or the engine's
# default (crashlib.sh's default_barrier).
BARRIER=${RENC_CRASH_BARRIER:-$(default_barrier)}
echo "configurations run with --barrier $BARRIER"

expect_ok renc keys create a
expect_ok renc keys create b
TARGET=local:b/1

section "corpora"
NSMALL=150
if [ $PYCHECK = 0 ]; then
  # Without the independent reader every check costs two processes a blob.
  NSMALL=48
  echo "NOTE: no python3 cryptography: blobs are checked with decrypt + inspect; $NSMALL small blobs"
fi
make_small small $NSMALL
make_big big

# ---- one configuration ---------------------------------------------------------

CFG=""     # e.g. "small rekey out"
CORPUS=""  # small | big
ROOT=""    # where the blobs end up: $SRC or $OUT
ARGS=()    # the run's arguments after `run`


# on_whole_run: called by probe after a whole run (output in
# $WORK/probe.out): the first of a configuration does what it claims.
BASELINE_DONE=""
on_whole_run() {
  [ -z "$BASELINE_DONE" ] || return 0
  BASELINE_DONE=1
  local n
  n=$(nblobs "$CORPUS")
  if [ "$CFG" = "${CFG% header in}" ]; then
    if grep -qE "header rewrite in place|rewriting only their header" "$WORK/probe.out"; then
      fail "$CFG: a whole run rewrote headers in place"
    else
      pass "$CFG: a whole run writes every blob through a copy"
    fi
  else
    if grep -qE "^run: $n blobs re-encrypted \($n by a header rewrite in place\)|^run: $n of them rewrapped by rewriting only their header" \
      "$WORK/probe.out"; then
      pass "$CFG: a whole run rewrites all $n headers in place"
    else
      fail "$CFG: a whole run did not rewrite all $n headers in place"
      head -n 2 "$WORK/probe.out" | sed 's/^/    /' >&2
    fi
  fi
}

KILLED=0        # kill points exercised, in all
CFG_COUNT=0
MISSES=0
declare -A CFG_KILLS

# kill_run KIND N: runs the configuration with one kill; $RC its exit
# status; $KILL_DESC says where.
kill_run() {
  local kind=$1 n=$2 pid
  fresh
  if [ "$kind" = time ]; then
    KILL_DESC="SIGKILL after $n ms"
    "$RENC_BIN" run --state "$STATE" "${ARGS[@]}" >"$WORK/out" 2>"$WORK/err" &
    pid=$!
    sleep "$(printf '%d.%03d' $((n / 1000)) $((n % 1000)))"
    kill -KILL $pid 2>/dev/null
    { wait $pid; } 2>/dev/null
    RC=$?
  else
    KILL_DESC="RENC_FAULT=$kind:$n:KILL"
    { RENC_FAULT=$kind:$n:KILL "$RENC_BIN" run --state "$STATE" "${ARGS[@]}" \
      >"$WORK/out" 2>"$WORK/err"; } 2>/dev/null
    RC=$?
  fi
}

# after_kill DESC KIND: the same command again, and every check.
RESUME_SEQ=0
after_kill() {
  local desc=$1 kind=$2 resume=()
  RESUME_SEQ=$((RESUME_SEQ + 1))
  # Every other resume says --resume; a plain rerun must continue as well.
  [ $((RESUME_SEQ % 2)) -eq 0 ] && resume=(--resume)
  san_text "$desc" "$WORK/err"
  run renc run "${resume[@]}" "${ARGS[@]}"
  san_text "$desc: the rerun" "$WORK/err"
  if [ "$RC" -eq 0 ]; then
    pass "$desc: the rerun exits 0"
  else
    fail "$desc: the rerun exited $RC"
    _show_last
  fi
  # A fault kill comes after the run was journaled: the rerun continues it
  # (unless the recovery of its header intents finished the run: then the
  # rerun is a new run that finds every blob done).
  if [ "$kind" != time ]; then
    if grep -q "^run: resuming run" "$WORK/out" ||
      { grep -q "^run: recovered in-place header writes" "$WORK/out" &&
        grep -q "^run: 0 blobs re-encrypted" "$WORK/out"; }; then
      pass "$desc: the rerun continues the run"
    else
      fail "$desc: the rerun did not say 'resuming run'"
      _show_last
    fi
  fi
  if grep -q "recovered in-place header writes" "$WORK/out"; then
    if grep -q "recovered in-place header writes of a crashed attempt: [0-9]* found rewritten, [0-9]* found as they were, [0-9]* completed from the journal, 0 unresolved" "$WORK/out"; then
      pass "$desc: header recovery left nothing unresolved"
    else
      fail "$desc: header recovery: $(grep "recovered in-place" "$WORK/out")"
    fi
  fi
  # Every file counted once: by this attempt or as finished by an earlier one.
  local counts want
  counts=$(awk '
    /^run: [0-9]+ blobs re-encrypted/ {
      for (i = 1; i <= NF; i++) {
        if ($(i + 1) == "blobs" && $(i + 2) ~ /^re-encrypted/) d = $i
        if ($(i + 1) == "skipped") s = $i
        if ($(i + 1) == "not" && $(i + 2) == "RENC,") r = $i
        if ($(i + 1) == "failed") f = $i
      }
    }
    /more blobs were finished by earlier attempts/ { e = $2 }
    END { print d + s + r + e, f + 0 }' "$WORK/out")
  want="$(($(nblobs "$CORPUS") + $(nothers "$CORPUS"))) 0"
  if [ "$counts" = "$want" ]; then
    pass "$desc: the rerun accounts for every file once"
  else
    fail "$desc: the rerun's counts (files, failed) are '$counts', wanted '$want'"
    head -n 3 "$WORK/out" | sed 's/^/    /' >&2
  fi
  if [ "$ROOT" = "$OUT" ]; then
    expect_tree "$desc" "$OUT" "$CORPUS" "$TARGET" --mirror
    expect_pristine "$desc: the source" "$SRC" "$CORPUS"
    expect_no_temporaries "$desc" "$SRC" "$OUT"
  else
    expect_tree "$desc" "$SRC" "$CORPUS" "$TARGET"
    expect_no_temporaries "$desc" "$SRC"
  fi
  expect_status "$desc" finished "$CORPUS"
}

# plan_points: the kind of each kill point (PK) and its place among the
# points of that kind (PJ); USES counts them per kind.  Kinds rotate with the
# configuration, so that every kind gets its share when POINTS is not a
# multiple of four; a kind with fewer operations than points gives the rest
# to kills by time, so that no fault point is used twice.
plan_points() {
  local i k
  PK=() PJ=()
  USES=([write]=0 [fsync]=0 [journal]=0 [time]=0)
  for ((i = 0; i < POINTS; i++)); do
    k=${KINDS[$(((i + CFG_COUNT) % 4))]}
    [ "$k" = time ] || [ "${USES[$k]}" -lt "${TOTALS[$k]}" ] || k=time
    PK[i]=$k
    PJ[i]=${USES[$k]}
    USES[$k]=$((USES[$k] + 1))
  done
}

# kill_point I: the I-th kill point of the configuration: the j-th of the
# points of its kind falls in the j-th of as many equal parts of the range
# (the operations counted, or the milliseconds of a whole run).
kill_point() {
  local i=$1 kind=${PK[$1]} j=${PJ[$1]} n tries total uses part
  uses=${USES[$kind]}
  # A kill by time falls within the first 4/5 of a whole run's time (the
  # last part is the journal's closing and the process's exit).
  if [ "$kind" = time ]; then total=$((DUR_MS * 4 / 5)); else total=${TOTALS[$kind]}; fi
  part=$(((total + uses - 1) / uses))
  rand_below "$part"
  n=$((1 + j * total / uses + R))
  [ "$n" -gt "$total" ] && n=$total
  for ((tries = 0; tries < 4; tries++)); do
    kill_run "$kind" "$n"
    [ "$RC" -ne 0 ] && break
    # Finished before the kill: retry earlier.
    MISSES=$((MISSES + 1))
    echo "    $CFG: $KILL_DESC: the run finished first; retrying earlier"
    [ "$n" -le 1 ] && break
    rand_below $((n - 1))
    n=$((1 + R))
  done
  local desc="$CFG, $KILL_DESC"
  if [ "$RC" -eq 137 ]; then
    KILLED=$((KILLED + 1))
    CFG_KILLS[$CFG]=$((${CFG_KILLS[$CFG]:-0} + 1))
    [ -n "${E2E_VERBOSE:-}" ] && echo "  killed: $desc"
    after_kill "$desc" "$kind"
  elif [ "$RC" -eq 0 ]; then
    fail "$desc: never killed (the run always finished first)"
  else
    fail "$desc: exited $RC, wanted 137 (killed)"
    _show_last
  fi
}

KINDS=(write fsync journal time)
declare -A TOTALS USES

configuration() {
  set_config "$@"
  case " $* " in *" --direct "*) CFG+=" --direct" ;; esac
  if [ -n "${RENC_CRASH_ONLY:-}" ] && ! [[ $CFG =~ $RENC_CRASH_ONLY ]]; then
    return
  fi
  section "$CFG"
  BASELINE_DONE=""
  local op
  for op in write fsync journal; do
    ops_total $op
    TOTALS[$op]=$TOTAL
  done
  [ -z "$BASELINE_DONE" ] && { probe write 1000000000 || true; }
  echo "    a whole run: ${TOTALS[write]} writes, ${TOTALS[fsync]} barriers," \
    "${TOTALS[journal]} journal commits, ${DUR_MS} ms"
  check "$CFG: a whole run writes and makes durable" \
    test "${TOTALS[write]}" -gt 0 -a "${TOTALS[fsync]}" -gt 0 -a "${TOTALS[journal]}" -gt 0
  local i
  plan_points
  for ((i = 0; i < POINTS; i++)); do
    kill_point $i
  done
  check "$CFG: $POINTS kill points exercised (${USES[write]} writes, ${USES[fsync]} barriers, ${USES[journal]} journal commits, ${USES[time]} by time)" \
    test "${CFG_KILLS[$CFG]:-0}" -eq "$POINTS"
  echo "    $CFG: ${CFG_KILLS[$CFG]:-0} kill points: ${USES[write]} writes, ${USES[fsync]} barriers," \
    "${USES[journal]} journal commits, ${USES[time]} by time"
  CFG_COUNT=$((CFG_COUNT + 1))
}

for corpus in small big; do
  for how in rekey copy header; do
    configuration $corpus $how in
    [ $how = header ] || configuration $corpus $how out
  done
done

# --direct: O_DIRECT reads and writes, its default workers (two per core)
# and 32 chunks in flight per blob; the same kill points, where the
# filesystem under the work directory takes O_DIRECT.
if dd if=/dev/zero of="$WORK/odirect.probe" bs=4096 count=1 oflag=direct 2>/dev/null; then
  configuration big rekey in --memory 64M --progress=none "${BARRIEROPTS[@]}" --direct
else
  echo "    (no O_DIRECT under $WORK: the --direct configuration is not run)"
fi
rm -f "$WORK/odirect.probe"

echo "$KILLED kill points exercised ($CFG_COUNT configurations)${MISSES:+; $MISSES runs finished before their kill and were retried}"

# ---- the other barrier mode ------------------------------------------------------
# The configurations above use the default --barrier (batch, on the kernels
# CI runs; RENC_CRASH_BARRIER chooses).  --barrier batch makes a batch's new files
# durable with one syncfs, renames them, and makes the renames durable with
# another: with one worker, the first batch's are the run's first and second
# barriers, and its commits (renames) come between.  Kills there: before
# the new files are durable, once they are and before any rename, among the
# renames, after the renames before they are durable, and in the second
# batch; each resumed and checked like the kill points above.
OTHER_BARRIER=batch
[ "$BARRIER" = batch ] && OTHER_BARRIER=file
for how in "rekey in" "copy out" "header in"; do
  set_config small $how --threads 1 --memory 20M --progress=none --barrier $OTHER_BARRIER
  CFG="$CFG --barrier $OTHER_BARRIER"
  if [ -n "${RENC_CRASH_ONLY:-}" ] && ! [[ $CFG =~ $RENC_CRASH_ONLY ]]; then
    continue
  fi
  section "$CFG"
  points=(fsync:1 commit:1 commit:60 fsync:2 fsync:3)
  # In place, a header rewrite renames nothing: kills among the writes and
  # at the batches' barriers.
  [ "$how" = "header in" ] && points=(fsync:1 write:60 fsync:2)
  for p in "${points[@]}"; do
    kill_run "${p%%:*}" "${p#*:}"
    if [ "$RC" -ne 137 ]; then
      fail "$CFG, $KILL_DESC: exited $RC, wanted 137 (killed)"
      _show_last
      continue
    fi
    # Where the kill fell (--barrier batch): at the first commit every
    # new file of the first batch is there, none renamed; at the second
    # barrier, they are renamed.
    if [ "$OTHER_BARRIER" = batch ] && [ "$how" != "header in" ]; then
      case $p in
        commit:1) check "$CFG, $KILL_DESC: the first batch's new files staged, none renamed"           test "$(temporaries "$ROOT" | wc -l)" -gt 1 ;;
        fsync:2) check "$CFG, $KILL_DESC: the first batch renamed, nothing staged"           test -z "$(temporaries "$ROOT")" ;;
      esac
    fi
    after_kill "$CFG, $KILL_DESC" "${p%%:*}"
  done
done

# ---- torn headers ----------------------------------------------------------------

# rewritten NAME [MAX]: "REL HEADER_LEN" for up to MAX (default 2) blobs of
# $SRC whose header is longer than 512 bytes and was rewritten (at least in
# the page cache): their first 4 KiB differ from the pristine corpus's.
rewritten() {
  local rel hl k=0
  while IFS= read -r rel; do
    cmp -s -n 4096 "$SRC/$rel" "$WORK/pristine/$1/$rel" && continue
    hl=$(renc inspect "$WORK/pristine/$1/$rel" | jq -r .header_len)
    [ "$hl" -gt 512 ] || continue
    echo "$rel $hl"
    k=$((k + 1))
    [ $k -lt "${2:-2}" ] || break
  done <"$WORK/$1.blobs"
}

# tear REL SECTOR: puts back the original bytes of the header's 512-byte
# SECTOR (0 or 1), leaving the others new: what a crash in the middle of
# the header write can leave.
tear() {
  dd if="$WORK/pristine/$CORPUS/$1" of="$SRC/$1" bs=512 skip="$2" seek="$2" count=1 \
    conv=notrunc status=none
}

# torn CORPUS N: an in-place header run killed at barrier N; tears up to two
# rewritten headers (one in its first sector, one in its second); the rerun
# completes them from the journal.
torn() {
  local corpus=$1 n=$2 list rel hl k=0 torn_rels=()
  set_config "$corpus" header in
  CFG="torn headers, $corpus"
  section "$CFG"
  kill_run fsync "$n"
  if [ "$RC" -ne 137 ]; then
    fail "$CFG: $KILL_DESC: exit $RC, wanted 137"
    return
  fi
  list=$(rewritten "$corpus")
  while read -r rel hl; do
    [ -n "$rel" ] || continue
    tear "$rel" $((k % 2))
    torn_rels+=("$rel")
    k=$((k + 1))
  done <<<"$list"
  check "$CFG: headers longer than 512 bytes rewritten before the kill (${#torn_rels[@]} torn)" \
    test ${#torn_rels[@]} -ge 1
  for rel in "${torn_rels[@]}"; do
    check "$CFG: $rel is torn (neither old nor new header)" \
      test "$(blob_state "$SRC/$rel")" = error
  done
  # A crashed run: the status says so, with its header intents.
  if status_json; then
    check "$CFG: status of the crashed run: crashed, header intents > 0" \
      test "$(jq -r '"\(.state) \(.header_intents > 0)"' "$WORK/status.json")" = "crashed true"
  else
    fail "$CFG: status --json: $(head -c 200 "$WORK/status.err")"
  fi
  run renc run "${ARGS[@]}"
  check "$CFG: the rerun exits 0 or 1 (got $RC)" test "$RC" -eq 0 -o "$RC" -eq 1 || _show_last
  expect_out "resuming run" "${#torn_rels[@]} completed from the journal, 0 unresolved"
  for rel in "${torn_rels[@]}"; do
    check "$CFG: $rel is whole again, under $TARGET" \
      test "$(blob_state "$SRC/$rel")" = "ok $TARGET"
  done
  expect_tree "$CFG" "$SRC" "$corpus" "$TARGET"
  expect_no_temporaries "$CFG" "$SRC"
  expect_status "$CFG" finished "$corpus"
}

# The fsync kill falls among the first batch's barriers: the batch's intents
# are durable and all its headers written (--barrier batch: its one syncfs).
# TEN_FSYNC: a kill among the first batch's barriers, after some headers.
if [ "$BARRIER" = batch ]; then
  torn small 1
  TEN_FSYNC=1
else
  torn small 20
  TEN_FSYNC=10
fi
torn big 1

section "a crash while recovering torn headers"
set_config small header in
CFG="crash in recovery"
kill_run fsync $TEN_FSYNC
check "$CFG: killed ($KILL_DESC)" test "$RC" -eq 137
read -r rel hl < <(rewritten small 1)
check "$CFG: a rewritten header to tear" test -n "${rel:-}"
[ -n "${rel:-}" ] && tear "$rel" 0
# The recovery makes each header it finds new or completes durable, with a
# barrier each: the first one kills it.
{ RENC_FAULT=fsync:1:KILL "$RENC_BIN" run --state "$STATE" "${ARGS[@]}" >"$WORK/out" 2>"$WORK/err"; } 2>/dev/null
check "$CFG: the rerun killed in the recovery" test $? -eq 137
run renc run "${ARGS[@]}"
check "$CFG: the second rerun exits 0" test "$RC" -eq 0 || _show_last
expect_out "recovered in-place header writes" "0 unresolved"
expect_tree "$CFG" "$SRC" small "$TARGET"
expect_no_temporaries "$CFG" "$SRC"
expect_status "$CFG" finished small
expect_mode 600 "$(journal_of)"

section "a half-rewritten header changed by someone else"
# Neither old nor new in a sector: not a torn write, but another writer's
# change.  The intent is settled as replaced (nothing is written onto the
# blob), the blob is looked at afresh like any file (skipped when its header
# still names the target, failed when it no longer parses: which, depends on
# the field the changed byte falls in), and nothing holds a later run or
# --restart back.
set_config small header in
CFG="header changed after the crash"
kill_run fsync $TEN_FSYNC
check "$CFG: killed ($KILL_DESC)" test "$RC" -eq 137
read -r rel hl < <(rewritten small 1)
check "$CFG: a rewritten header" test -n "${rel:-}"
if [ -n "${rel:-}" ]; then
  flip_byte "$SRC/$rel" 100
  sha_x=$(sha_of "$SRC/$rel")
  run renc run "${ARGS[@]}"
  check "$CFG: the rerun exits 0 or 1 (got $RC)" test "$RC" -eq 0 -o "$RC" -eq 1 || _show_last
  expect_out "0 unresolved; 0 gone, 1 replaced by another writer" \
    "$SRC/$rel: holds neither the old nor the new header: replaced by another writer: left as it is"
  check "$CFG: $rel left as it was" test "$(sha_of "$SRC/$rel")" = "$sha_x"
  if status_json; then
    check "$CFG: status: no intent open, 1 settled as replaced" \
      test "$(jq -r '"\(.header_intents) \(.header_settled.replaced)"' "$WORK/status.json")" = "0 1"
  else
    fail "$CFG: status --json: $(head -c 200 "$WORK/status.err")"
  fi
  run renc run --restart "${ARGS[@]}"
  check "$CFG: --restart is not held back (exit $RC)" test "$RC" -eq 0 -o "$RC" -eq 1
  check "$CFG: --restart says nothing of header writes" \
    test "$(grep -c -e 'would forget' -e 'header write' "$WORK/err")" -eq 0
  check "$CFG: $rel still as it was" test "$(sha_of "$SRC/$rel")" = "$sha_x"
  # The operator puts the blob back (here: its original); the next run
  # rewraps it.
  cp "$WORK/pristine/small/$rel" "$SRC/$rel"
  run renc run "${ARGS[@]}"
  check "$CFG: after the blob is put back, the rerun exits 0" test "$RC" -eq 0 || _show_last
  expect_tree "$CFG" "$SRC" small "$TARGET"
  expect_status "$CFG" finished small
fi

# ---- a kill while the journal is being made ---------------------------------------
# SQLite makes a new journal in a few transactions (through a rollback file,
# DB-journal, before it switches to WAL); a kill between two of them must
# not leave a journal the next run refuses.  strace's fault injection kills
# the run at the K-th opening of that file: deterministic where a kill by
# time only sometimes falls there.
section "a kill while the journal is being made"
if command -v strace >/dev/null 2>&1 &&
  strace -f -qq -o /dev/null -e trace=openat -e inject=openat:signal=KILL:when=60000 true 2>/dev/null; then
  set_config big rekey in
  JC=$WORK/jc.db
  ARGS=(--journal "$JC" "${ARGS[@]}")
  jkills=0
  for when in 1 2 3 4; do
    fresh
    rm -f "$JC" "$JC"-*
    # (LeakSanitizer cannot work under ptrace: off for this process.)
    { ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        strace -f -qq -o /dev/null -P "$JC-journal" -e trace=openat \
        -e inject=openat:signal=KILL:when=$when \
        "$RENC_BIN" run --state "$STATE" "${ARGS[@]}" >/dev/null 2>&1; } 2>/dev/null
    RC=$?
    [ "$RC" -eq 0 ] && continue # made before the K-th opening
    desc="killed at opening $when of the journal's rollback file"
    if [ "$RC" -ne 137 ]; then
      fail "$desc: exit $RC, wanted 137"
      continue
    fi
    jkills=$((jkills + 1))
    run renc run "${ARGS[@]}"
    if [ "$RC" -eq 0 ]; then
      pass "$desc: the rerun exits 0"
    else
      fail "$desc: the rerun exited $RC"
      _show_last
    fi
    expect_tree "$desc" "$SRC" big "$TARGET"
    expect_status "$desc" finished big --journal "$JC"
  done
  check "kills while the journal is being made: $jkills" test "$jkills" -ge 1
else
  echo "NOTE: no strace with fault injection: the journal-creation kills are skipped"
fi

expect_no_sanitizer_reports
section "done"
finish
