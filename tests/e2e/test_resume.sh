#!/usr/bin/env bash
# tests/e2e/test_resume.sh — `run` after a failure, an interruption or beside
# another run, and resumed:
#   (a) ENOSPC and EIO injected (RENC_FAULT=OP:N:ERRNO) at the first, middle
#       and last writes and durability barriers, and at journal commits,
#       during rekey and rewrap runs of small and big blobs: exit 1, the
#       failed blobs named with the cause and left wholly old (a failed
#       directory barrier: old or new), every other blob done, nothing lost;
#       and a journal commit failing in the middle of a long run stops it,
#       and under --barrier batch at its two syncfs and at a commit (rename),
#       every blob whole; the same command again finishes the run;
#   (b) SIGINT and SIGTERM in the middle of a run: exit 130, the message,
#       every blob wholly old or wholly new, status "interrupted"; resumed;
#   (c) a second run over the same source, the same --out or the same journal
#       is refused while the first lives (held with SIGSTOP); once the first
#       is SIGKILLed nothing is left locked and the run resumes;
#   (d) --resume with no journal starts the run; a conflicting rerun of an
#       unfinished run (another mode, target, --out, --keep-old) is refused
#       with exit 2 and changes nothing; --restart then starts a new run;
#   (e) `status --json`: "running" with blobs pending while a run is
#       stopped, "crashed" once it was killed, "finished" after the resume.
# Every run's standard error is also searched for sanitizer reports.  About
# 1.5-2 minutes on 2 cores.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/crashlib.sh"

T0=$SECONDS
RENC_BIN=$(realpath "$RENC_BIN")
cd "$WORK" || exit 2
sanitizer_logs

# One worker: the fault seam's N-th operation is then the same one every time.
RUN1=(--threads 1 --memory 20M --progress=none)
RUNOPTS=("${RUN1[@]}") # set_config's default: one thread, so the N-th operation is always the same one
TARGET=local:b/1

expect_ok renc keys create a
expect_ok renc keys create b
expect_ok renc keys create c

section "corpora"
if [ $PYCHECK = 1 ]; then
  make_small small 64
else
  # Without the independent reader every check costs two processes a blob.
  echo "NOTE: no python3 cryptography: blobs are checked with decrypt + inspect; 40 small blobs"
  make_small small 40
fi
make_big big


# classify DESC NAMED OK_NAMED OK_OTHERS: every blob of $CORPUS under $ROOT
# is wholly old ("old": opens to its plaintext under local:a/1 alone; with
# --out: not in the mirror, "absent"), or wholly new ("new": under the
# target alone); a blob listed in the file NAMED (paths relative to the
# corpus) must be one of the words of OK_NAMED, any other of OK_OTHERS.
classify() {
  local desc=$1 named=$2 ok_named=$3 ok_others=$4 rel problems
  : >"$WORK/absent"
  while IFS= read -r rel; do
    [ -e "$ROOT/$rel" ] || echo "$rel" >>"$WORK/absent"
  done <"$WORK/$CORPUS.blobs"
  problems=$(_facts "$ROOT" "$CORPUS" | awk -F'\t' -v okn="$ok_named" -v oko="$ok_others" \
    -v target="$TARGET" '
    FILENAME == ARGV[1] { sha[$1] = $2; next }
    FILENAME == ARGV[2] { named[$1] = 1; next }
    FILENAME == ARGV[3] { absent[$1] = 1; next }
    {
      if ($1 in absent) st = "absent"
      else if ($2 != "ok") { print $1 ": " $2; next }
      else if ($3 != sha[$1]) { print $1 ": plaintext differs"; next }
      else if ($4 == "local:a/1") st = "old"
      else if ($4 == target) st = "new"
      else { print $1 ": slots " $4; next }
      ok = ($1 in named) ? okn : oko
      if ((" " ok " ") !~ (" " st " ")) print $1 ": " st ", wanted " ok (($1 in named) ? " (named)" : "")
      count[st]++
    }
    END { for (s in count) printf "%s=%d\n", s, count[s] > "/dev/stderr" }' \
    "$WORK/$CORPUS.exp" "$named" "$WORK/absent" - 2>"$WORK/classes")
  if [ -z "$problems" ]; then
    pass "$desc: every blob whole ($(sort "$WORK/classes" | tr '\n' ' '))"
  else
    fail "$desc: $(wc -l <<<"$problems") blobs wrong"
    head -n 6 <<<"$problems" | sed 's/^/    /' >&2
  fi
}

# resume_and_check DESC: the same command again finishes the run.
resume_and_check() {
  local desc=$1
  run renc run "${ARGS[@]}"
  san_text "$desc: the rerun" "$WORK/err"
  check "$desc: the rerun exits 0" test "$RC" -eq 0 || _show_last
  if [ "$ROOT" = "$OUT" ]; then
    expect_tree "$desc, rerun" "$OUT" "$CORPUS" "$TARGET" --mirror
    expect_pristine "$desc, rerun: the source" "$SRC" "$CORPUS"
    expect_no_temporaries "$desc, rerun" "$SRC" "$OUT"
  else
    expect_tree "$desc, rerun" "$SRC" "$CORPUS" "$TARGET"
    expect_no_temporaries "$desc, rerun" "$SRC"
  fi
  expect_status "$desc, rerun" finished "$CORPUS"
}

# ---- (a) ENOSPC and EIO ----------------------------------------------------------

CAUSE_ENOSPC="No space left on device"
CAUSE_EIO="Input/output error"
ERRS=(ENOSPC EIO)
ERR_SEQ=0

# fault_case OP N: a fresh run with RENC_FAULT=OP:N:ERR (ENOSPC and EIO in
# turn); checks; the rerun.
fault_case() {
  local op=$1 n=$2 err cause desc nnamed jstop
  err=${ERRS[$((ERR_SEQ % 2))]}
  ERR_SEQ=$((ERR_SEQ + 1))
  eval "cause=\$CAUSE_$err"
  desc="$CFG, RENC_FAULT=$op:$n:$err"
  fresh
  rm -f "$WORK/fault.json"
  run env RENC_FAULT="$op:$n:$err" "$RENC_BIN" run --state "$STATE" --report "$WORK/fault.json" \
    "${ARGS[@]}"
  san_text "$desc" "$WORK/err"
  if [ "$RC" -eq 1 ]; then
    pass "$desc: exit 1"
  else
    fail "$desc: exit $RC, wanted 1"
    _show_last
    return
  fi
  # The blobs that failed with the cause, relative to the corpus: standard
  # error names up to 10 for one cause and sums up the rest; the report
  # lists every one.
  sed -n "s|^reencrypt: run: \\(.*\\): $cause\$|\\1|p" "$WORK/err" | grep -v '^journal ' |
    sed -e "s|^$SRC/||" -e "s|^$OUT/||" | LC_ALL=C sort -u >"$WORK/named.err"
  { cat "$WORK/named.err"
    [ -f "$WORK/fault.json" ] &&
      jq -r --arg c "$cause" '.failures[] | select(.error == $c) | .path' "$WORK/fault.json" |
      sed -e "s|^$SRC/||" -e "s|^$OUT/||"
  } | LC_ALL=C sort -u >"$WORK/named"
  nnamed=$(wc -l <"$WORK/named")
  local nerr
  nerr=$(wc -l <"$WORK/named.err")
  if [ "$nnamed" -gt 10 ]; then
    check "$desc: stderr names 10 of the $nnamed and sums up the rest" \
      test "$nerr" -eq 10 -a "$(grep -c "^reencrypt: run: $((nnamed - 10)) more blobs failed the same way: $cause" "$WORK/err")" -eq 1
  fi
  jstop=0
  grep -q "^reencrypt: run: journal .*: $cause" "$WORK/err" && jstop=1
  if [ "$op" = journal ]; then
    # A batch's header intents that could not be journaled fail its blobs;
    # a batch of notes that could not be, stops the run.
    check "$desc: the blobs or the journal named with '$cause'" \
      test "$nnamed" -gt 0 -o "$jstop" -eq 1
  else
    check "$desc: the failed blob named with '$cause'" test "$nnamed" -gt 0
    check "$desc: every name is a blob of the corpus" \
      test -z "$(LC_ALL=C comm -23 "$WORK/named" "$WORK/$CORPUS.blobs")"
  fi
  # A failed write or intent leaves the blob wholly old; a failed barrier
  # after the rename (the directory's) can leave it new, as a crash could.
  local ok_named="old absent" ok_others="new"
  [ "$op" = fsync ] && ok_named="old absent new"
  [ "$jstop" -eq 1 ] && ok_others="old absent new"
  # A full disk stops the run (the blobs not started are left old) and says
  # so once.
  if grep -q "^reencrypt: run: stopped: no space left on device writing .*; [0-9]* blobs not started" \
    "$WORK/err"; then
    ok_others="old absent new"
  fi
  classify "$desc" "$WORK/named" "$ok_named" "$ok_others"
  if [ "$ROOT" = "$OUT" ]; then
    expect_pristine "$desc: the source" "$SRC" "$CORPUS"
    expect_no_temporaries "$desc" "$SRC" "$OUT"
  else
    expect_no_temporaries "$desc" "$SRC"
  fi
  if status_json; then
    local got
    got=$(jq -r '"\(.state) \(.blobs.failed) \(.failures | length > 0)"' "$WORK/status.json")
    if [ "$jstop" -eq 1 ]; then
      # The run could not write its journal at some point: "finished" when
      # its later commits recorded every blob, else failed (or crashed: the
      # attempt's end could not be written).
      got=$(jq -r '"\(.state) pending=\(.blobs.pending) failed=\(.blobs.failed)"' "$WORK/status.json")
      check "$desc: status after a journal failure ($got)" \
        grep -qE '^((failed|crashed) .*|finished pending=0 failed=0)$' <<<"$got"
    else
      check "$desc: status failed, $nnamed failed, failures listed ($got)" \
        test "$got" = "failed $nnamed true"
    fi
  else
    fail "$desc: status --json: $(head -c 300 "$WORK/status.err")"
  fi
  resume_and_check "$desc"
}

# fault_config CORPUS HOW WHERE: ENOSPC/EIO at the first and last writes, the
# middle and last barriers, and the first journal commits.
fault_config() {
  set_config "$@"
  section "(a) $CFG"
  local wt ft
  ops_total write
  wt=$TOTAL
  ops_total fsync
  ft=$TOTAL
  echo "    a whole run: $wt writes, $ft barriers"
  check "$CFG: a whole run has writes and barriers" test "$wt" -gt 0 -a "$ft" -gt 0
  fault_case write 1
  fault_case write "$wt"
  fault_case fsync $(((ft + 1) / 2))
  fault_case fsync "$ft"
  fault_case journal 1
  [ "$2" = header ] && fault_case journal 2
}

# A corpus of NSIG copies of a 5 MiB blob (40 MiB): long enough, with one
# worker, to be interrupted.
make_sig() {
  local n=$1 k rel sha
  rm -rf "$WORK/pristine/sig"
  mkdir -p "$WORK/pristine/sig"
  IFS=$'\t' read -r rel sha <"$WORK/big.exp"
  : >"$WORK/sig.exp"
  for ((k = 0; k < n; k++)); do
    cp "$WORK/pristine/big/$rel" "$WORK/pristine/sig/s$(printf %03d $k).renc"
    printf 's%03d.renc\t%s\n' $k "$sha" >>"$WORK/sig.exp"
  done
  : >"$WORK/sig.others"
  _corpus_done sig >/dev/null
}
NSIG=8
make_sig $NSIG

fault_config small rekey in
fault_config small header in
fault_config small copy out
fault_config big rekey in
fault_config big copy in

# --barrier batch: one syncfs for a batch's new files (the first barrier
# counted in a whole run with one worker), one for its renames (the
# second); an error at the first fails the batch's blobs, left wholly old
# with no temporary; at the second, old or new; a failed commit (rename)
# leaves its blob wholly old.  A whole run's count is not needed: the
# points are the first batch's.
for how in "rekey in" "copy out"; do
  set_config small $how --threads 1 --memory 20M --progress=none --barrier batch
  CFG="$CFG --barrier batch"
  section "(a) $CFG"
  if [ "$how" = "rekey in" ]; then
    fault_case fsync 1
    fault_case fsync 2
    fault_case commit 40
  else
    fault_case commit 1
  fi
done
fault_config big header in

# A journal commit that fails in the middle of a longer run (its first batch
# of notes, after about 200 ms) stops the run, with blobs left to do: the
# corpus grows until a run is long enough for that.
for ((tries = 0; tries < 4; tries++)); do
  set_config sig rekey in
  fresh
  RENC_FAULT=journal:1:ENOSPC "$RENC_BIN" run --state "$STATE" "${ARGS[@]}" >/dev/null 2>&1
  status_json && [ "$(jq -r .blobs.pending "$WORK/status.json")" -gt 0 ] && break
  NSIG=$((NSIG * 2))
  make_sig $NSIG
done
section "(a) $CFG ($NSIG blobs): the first journal commit fails, in the middle"
check "(a) $CFG: a run long enough to commit its journal before the end ($NSIG blobs)" \
  test "$tries" -lt 4
fault_case journal 1

# ---- (b) SIGINT and SIGTERM ------------------------------------------------------


# wait_started DIR: until a temporary appears under DIR (at most 10 s).
wait_started() {
  local k
  for ((k = 0; k < 1000; k++)); do
    [ -n "$(temporaries "$1")" ] && return 0
    sleep 0.01
  done
  return 1
}

# interrupt SIGNAL WHERE: a rekey interrupted by SIGNAL once its first blob
# is being written; retried with a corpus twice as big when the run was
# over before the signal came.
interrupt() {
  local sig=$1 where=$2 tries pid desc
  for ((tries = 0; tries < 3; tries++)); do
    set_config sig rekey "$where"
    desc="(b) SIG$sig, $CFG ($NSIG blobs)"
    fresh
    "$RENC_BIN" run --state "$STATE" "${ARGS[@]}" >"$WORK/out" 2>"$WORK/err" &
    pid=$!
    wait_started "$ROOT"
    kill -"$sig" $pid
    wait $pid
    RC=$?
    san_text "$desc" "$WORK/err"
    [ "$RC" -ne 0 ] && break
    echo "    $desc: the run was over before the signal; again with $((NSIG * 2)) blobs"
    NSIG=$((NSIG * 2))
    make_sig $NSIG
  done
  section "$desc"
  if [ "$RC" -eq 130 ]; then
    pass "$desc: exit 130"
  else
    fail "$desc: exit $RC, wanted 130"
    _show_last
    return
  fi
  expect_msg "interrupted" "run the same command again"
  : >"$WORK/named"
  classify "$desc" "$WORK/named" "" "old absent new"
  check "$desc: some blobs were left to do" test -s "$WORK/absent" -o "$(grep -c '^old=' "$WORK/classes")" -gt 0
  if [ "$ROOT" = "$OUT" ]; then
    expect_pristine "$desc: the source" "$SRC" sig
    expect_no_temporaries "$desc" "$SRC" "$OUT"
  else
    expect_no_temporaries "$desc" "$SRC"
  fi
  if status_json; then
    check "$desc: status interrupted, blobs pending" \
      test "$(jq -r '"\(.state) \(.blobs.pending > 0)"' "$WORK/status.json")" = "interrupted true"
  else
    fail "$desc: status --json: $(head -c 300 "$WORK/status.err")"
  fi
  resume_and_check "$desc"
  expect_out "resuming run"
}

interrupt INT in
interrupt TERM out

# ---- (c) and (e): a second run while the first lives -----------------------------

section "(c) two runs at once"
set_config sig rekey out
desc="(c) $CFG"
fresh
restore small "$WORK/other"
"$RENC_BIN" run --state "$STATE" "${ARGS[@]}" >"$WORK/first.out" 2>"$WORK/first.err" &
pid=$!
wait_started "$OUT"
kill -STOP $pid
J=$(journal_of)
check "$desc: the first run has its journal" test -n "$J"
expect_mode 600 "$J"
if status_json; then
  check "(e) status of a stopped run: running, blobs pending" \
    test "$(jq -r '"\(.state) \(.blobs.pending > 0) \(.journal)"' "$WORK/status.json")" = "running true $J"
else
  fail "(e) status --json of a running run: $(head -c 300 "$WORK/status.err")"
fi
tree_hashes "$OUT" >"$WORK/mirror.sha"
# The same command.
expect_exit 1 renc run "${ARGS[@]}"
expect_msg "another run"
# The same source, another journal.
expect_exit 1 renc run --journal "$WORK/j2.db" --to local:b --mode rekey "${RUN1[@]}" "$SRC"
expect_msg "another run"
# The same --out, another source.
expect_exit 1 renc run --to local:b --mode rekey --out "$OUT" "${RUN1[@]}" "$WORK/other"
expect_msg "another run"
# The same journal, another source.
expect_exit 1 renc run --journal "$J" --to local:b --mode rekey "${RUN1[@]}" "$WORK/other"
expect_msg "in use by another run"
expect_pristine "$desc: the other source, after three refused runs" "$WORK/other" small
check "$desc: the refused runs did not touch the mirror" \
  cmp -s "$WORK/mirror.sha" <(tree_hashes "$OUT")
kill -KILL $pid
wait $pid 2>/dev/null
check "$desc: the first run SIGKILLed" test $? -eq 137
san_text "$desc: the first run" "$WORK/first.err"
if status_json; then
  check "(e) status after SIGKILL: crashed, blobs pending" \
    test "$(jq -r '"\(.state) \(.blobs.pending > 0)"' "$WORK/status.json")" = "crashed true"
else
  fail "(e) status --json of a crashed run: $(head -c 300 "$WORK/status.err")"
fi
# Nothing is left locked: a run over the other source with the same --out
# (a new journal) would now be allowed; the same command resumes.
resume_and_check "$desc"
expect_out "resuming run"
check "(e) status after the resume: finished, attempt 2" \
  test "$(jq -r '"\(.state) \(.attempts)"' "$WORK/status.json")" = "finished 2"

# ---- (d) --resume without a journal; conflicting reruns; --restart ---------------

section "(d) --resume, conflicts, --restart"
set_config small rekey in
fresh
run renc run --resume "${ARGS[@]}"
check "(d) --resume with no journal: exit 0" test "$RC" -eq 0 || _show_last
check "(d) --resume with no journal: a new run, not a resumed one" \
  test "$(grep -c 'resuming run' "$WORK/out")" -eq 0
expect_tree "(d) --resume with no journal" "$SRC" small "$TARGET"
expect_status "(d) --resume with no journal" finished small

# An unfinished run: killed in the middle of its writes, with its own journal.
JD=$WORK/d.db
set_config small rekey in --journal "$JD" "${RUN1[@]}"
fresh
{ RENC_FAULT=write:40:KILL "$RENC_BIN" run --state "$STATE" "${ARGS[@]}" >/dev/null 2>&1; } 2>/dev/null
check "(d) the first run killed at its 40th write" test $? -eq 137
tree_hashes "$SRC" >"$WORK/d.sha"
conflict() { # DESC ARGS...: refused with exit 2, nothing changed
  local desc=$1
  shift
  run renc run --journal "$JD" "$@"
  if [ "$RC" -eq 2 ]; then pass "(d) $desc: exit 2"; else fail "(d) $desc: exit $RC, wanted 2"; _show_last; fi
  expect_msg "unfinished run" "--restart"
  check "(d) $desc: nothing changed" cmp -s "$WORK/d.sha" <(tree_hashes "$SRC")
}
conflict "another mode" --to local:b --mode rewrap "${RUN1[@]}" "$SRC"
conflict "another target" --to local:c --mode rekey "${RUN1[@]}" "$SRC"
conflict "--keep-old" --to local:b --mode rekey --keep-old "${RUN1[@]}" "$SRC"
conflict "an --out" --to local:b --mode rekey --out "$OUT" "${RUN1[@]}" "$SRC"
check "(d) no mirror made by the refused run" test ! -e "$OUT/d0"
# --restart: a new run, in the other mode; the blobs the killed run
# finished are already under the target, the others are rewrapped.
run renc run --journal "$JD" --restart --to local:b --mode rewrap "${RUN1[@]}" "$SRC"
check "(d) --restart: exit 0" test "$RC" -eq 0 || _show_last
check "(d) --restart: a new run" test "$(grep -c 'resuming run' "$WORK/out")" -eq 0
expect_tree "(d) --restart" "$SRC" small "$TARGET"
expect_no_temporaries "(d) --restart (the killed run's temporaries too)" "$SRC"
expect_status "(d) --restart" finished small --journal "$JD"
check "(d) --restart: the journal's run is the new one, a rewrap" \
  test "$(jq -r '"\(.mode) \(.attempts)"' "$WORK/status.json")" = "rewrap 1"

# The same with --out: the killed run's temporaries are in the mirror.
JO=$WORK/d-out.db
set_config small rekey out --journal "$JO" "${RUN1[@]}"
fresh
{ RENC_FAULT=write:40:KILL "$RENC_BIN" run --state "$STATE" "${ARGS[@]}" >/dev/null 2>&1; } 2>/dev/null
check "(d) --out: the first run killed at its 40th write" test $? -eq 137
check "(d) --out: the killed run left temporaries in the mirror" test -n "$(temporaries "$OUT")"
run renc run --journal "$JO" --restart --to local:b --mode rewrap --out "$OUT" "${RUN1[@]}" "$SRC"
check "(d) --out --restart: exit 0" test "$RC" -eq 0 || _show_last
expect_tree "(d) --out --restart" "$OUT" small "$TARGET" --mirror
expect_pristine "(d) --out --restart: the source" "$SRC" small
expect_no_temporaries "(d) --out --restart (the killed run's temporaries too)" "$SRC" "$OUT"
expect_status "(d) --out --restart" finished small --journal "$JO"

expect_no_sanitizer_reports
section "done"
finish
