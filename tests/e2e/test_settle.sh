#!/usr/bin/env bash
# tests/e2e/test_settle.sh — in-place header writes a crash left in the
# journal, whose blobs were then removed or replaced by someone else before
# the resume.
#
# A rewrap in place is killed right after its header intents are durable
# (RENC_FAULT=write:1:KILL: before the first header write).  Then one blob is
# removed, one replaced by another writer's blob, one by a file that is not
# RENC, one by a symlink (to a copy of itself) and one by a folder.  The
# resume, started from another directory, must settle every intent: say once
# on stdout which ones are gone or replaced, write nothing onto what replaced
# a blob (the symlink is not followed), record them as settled, and finish.
# After it, `status` says finished and counts them; no later run, --restart
# or run to another target is held back.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RENC_BIN=$(realpath "$RENC_BIN")
cd "$WORK" || exit 2
sanitizer_logs
expect_ok renc keys create a
expect_ok renc keys create b

SRC=$WORK/src
mkdir -p "$SRC" "$WORK/plain"
for i in 1 2 3 4 5 6 7 8; do
  mkdata "$WORK/plain/$i" $((1000 + i * 700))
  renc encrypt --env t --key local:a "$WORK/plain/$i" "$SRC/b$i.renc" >/dev/null ||
    fail "seal b$i"
done
cp -a "$SRC" "$WORK/pristine"
ARGS=(--to local:b --mode rewrap --threads 1 --progress=none "$SRC")

# ---- the crash: intents durable, no header written ------------------------------
run env RENC_FAULT=write:1:KILL "$RENC_BIN" run --state "$STATE" "${ARGS[@]}"
check "the run is killed before its first header write (exit $RC)" test "$RC" -eq 137
renc status --json >"$WORK/st.json" 2>&1
check "the crashed run left 8 header intents" \
  test "$(jq -r '"\(.state) \(.header_intents)"' "$WORK/st.json")" = "crashed 8"
for i in 1 2 3 4 5 6 7 8; do
  check "b$i untouched by the crash" same "$SRC/b$i.renc" "$WORK/pristine/b$i.renc"
done

# ---- someone else changes the folder -------------------------------------------
rm "$SRC/b2.renc"                                              # gone
mkdata "$WORK/plain/other" 3333
renc encrypt --env t --key local:a "$WORK/plain/other" "$WORK/other.renc" >/dev/null
cp "$WORK/other.renc" "$SRC/b3.renc"                           # another writer's blob
echo "not a blob any more" >"$SRC/b4.renc"                     # not RENC
cp "$SRC/b4.renc" "$WORK/b4.expected"
mv "$SRC/b5.renc" "$WORK/b5.elsewhere"                         # a symlink to it
ln -s "$WORK/b5.elsewhere" "$SRC/b5.renc"
rm "$SRC/b6.renc" && mkdir "$SRC/b6.renc"                      # a folder

# ---- the resume, from another directory -----------------------------------------
cd / || exit 2
expect_ok renc run "${ARGS[@]}"
cd "$WORK" || exit 2
cp "$WORK/out" "$WORK/resume.out"
expect_out "recovered in-place header writes" "1 gone, 4 replaced by another writer"
expect_out "$SRC/b2.renc: gone since the crash"
for i in 3 4 5 6; do
  expect_out "$SRC/b$i.renc: holds neither the old nor the new header: replaced by another writer: left as it is"
done
check "each settled intent is told once" \
  test "$(grep -c -e 'gone since the crash' -e 'replaced by another writer: left as it is' "$WORK/resume.out")" -eq 5
check "nothing about the settled intents on stderr" test ! -s "$WORK/err"
check "the symlink was not followed: its target is untouched" \
  same "$WORK/b5.elsewhere" "$WORK/pristine/b5.renc"
check "the symlink is still a symlink" test -L "$SRC/b5.renc"
check "the folder is still a folder" test -d "$SRC/b6.renc"
check "the file that is not RENC is left as it is" same "$SRC/b4.renc" "$WORK/b4.expected"
check "b2 stays gone" test ! -e "$SRC/b2.renc"
# The other writer's blob is looked at afresh, like any file of the source.
renc decrypt "$SRC/b3.renc" "$WORK/b3.plain" >/dev/null 2>&1
check "the other writer's blob opens to its own plaintext" same "$WORK/b3.plain" "$WORK/plain/other"
check "the other writer's blob is moved to the target" \
  test "$(renc inspect "$SRC/b3.renc" | jq -r '[.slots[].ref] | join(",")')" = local:b/1
for i in 1 7 8; do
  rm -f "$WORK/p.out"
  renc decrypt "$SRC/b$i.renc" "$WORK/p.out" >/dev/null 2>&1
  check "b$i opens to its plaintext" same "$WORK/p.out" "$WORK/plain/$i"
  check "b$i is under local:b/1" \
    test "$(renc inspect "$SRC/b$i.renc" | jq -r '[.slots[].ref] | join(",")')" = local:b/1
done

# ---- status: finished, the settled intents counted ----------------------------
renc status --json >"$WORK/st.json" 2>&1
check "status: finished, no intent left open" \
  test "$(jq -r '"\(.state) \(.header_intents)"' "$WORK/st.json")" = "finished 0"
check "status: 1 gone and 4 replaced settled, 3 found as they were" \
  test "$(jq -r '.header_settled | "\(.gone) \(.replaced) \(.as_it_was)"' "$WORK/st.json")" = "1 4 3"
run renc status
expect_out "state     finished" "1 gone" "4 replaced by another writer"
check "status no longer says 'not yet settled'" \
  test "$(grep -c 'not yet settled' "$WORK/out")" -eq 0
check "status no longer says 'run again'" test "$(grep -c '^next' "$WORK/out")" -eq 0

# ---- nothing held back afterwards ---------------------------------------------
expect_ok renc run "${ARGS[@]}"
check "a later run says nothing more about them" \
  test "$(grep -c -e 'gone since' -e 'replaced by another' -e recovered "$WORK/out")" -eq 0
expect_ok renc run --restart "${ARGS[@]}"
expect_ok renc run --to local:a --mode rewrap --threads 1 --progress=none "$SRC"
check "the run to another target moved the blobs" \
  test "$(renc inspect "$SRC/b1.renc" | jq -r '[.slots[].ref] | join(",")')" = local:a/1

expect_no_sanitizer_reports
finish
