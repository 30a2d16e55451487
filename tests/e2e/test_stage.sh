#!/usr/bin/env bash
# test_stage.sh — the staged writes of put, restore, copy and backup create
# (docs/ENVIRONMENTS.md, "All or nothing"): killed at a rename or before the
# renames, a rerun of the same command finishes the work with one history
# row; names that merely contain ".renc-tmp." are data, reserved ones are
# refused; nothing is written through a symbolic link in a destination; a
# full disk names the file being written.
. "$(dirname "$0")/lib.sh"

DATA=$STATE/data
command -v strace >/dev/null || { echo "strace is needed" >&2; exit 2; }
have_pycheck || { echo "python3 with cryptography is needed (renc_check.py)" >&2; exit 2; }

# reserved DIR: the tool's temporaries (.NAME.renc-tmp.TAG) under DIR.
reserved() {
  find "$1" -name '.*.renc-tmp.*' 2>/dev/null
}

# plain_sums DIR: "REL SHA256" of the plaintext of every blob under DIR,
# read by the independent reader (one process for all).
plain_sums() {
  (cd "$1" && find . -type f ! -name '.*.renc-tmp.*' | sed 's|^\./||' | LC_ALL=C sort) >"$WORK/list"
  (cd "$1" && renc_check --list "$WORK/list") | jq -r '"\(.path) \(.sha256 // .status)"' | LC_ALL=C sort
}

# file_sums DIR: "REL SHA256" of every file under DIR.
file_sums() {
  (cd "$1" && find . -type f -print0 | xargs -0 -r sha256sum) |
    awk '{ p = $2; sub(/^\.\//, "", p); print p, $1 }' | LC_ALL=C sort
}

# expect_content DESC BLOBDIR SRCDIR: every blob opens to its source's bytes,
# and there is no other.
expect_content() {
  if diff <(plain_sums "$2") <(file_sums "$3") >"$WORK/diff"; then
    pass "$1: every blob opens to the right plaintext"
  else
    fail "$1: blobs differ from their sources: $(head -n 3 "$WORK/diff" | tr '\n' ' ')"
  fi
}

# history_count ENV ACTION: rows of that action in the environment's history.
history_count() {
  renc env show "$1" --json 2>/dev/null | jq "[.history[] | select(.action==\"$2\")] | length"
}

# not_in_err TEXT: the last run's stderr does not hold TEXT.
not_in_err() {
  ! grep -qF -- "$1" "$WORK/err"
}

# killed_at SYSCALL N CMD...: runs CMD under strace, killed by SIGKILL at its
# N-th call of SYSCALL (renameat: the N-th rename, whichever call makes it).
killed_at() {
  local sc=$1 n=$2
  shift 2
  [ "$sc" = renameat ] && sc=rename,renameat,renameat2
  run strace -f -o /dev/null -e trace="$sc" -e inject="$sc":signal=SIGKILL:when="$n" "$@"
}

expect_ok renc keys create cmk
NEW=$WORK/new OLD=$WORK/old
mkdir -p "$NEW/in" "$OLD/in"
for i in $(seq -w 0 599); do
  echo "new file $i" >"$NEW/in/f$i"
  echo "old content of $i" >"$OLD/in/f$i"
done

# ---- A. put killed at a rename or before the renames ------------------------
# renameat: the renames; write:N / fsync:N (RENC_FAULT): before the first.
for point in renameat:1 renameat:250 renameat:600 fault:write:300 fault:fsync:2; do
  env=p$(tr -c 'a-z0-9' '-' <<<"$point" | sed 's/-*$//')
  expect_ok renc env create "$env"
  case $point in
    renameat:*) killed_at renameat "${point#renameat:}" "$RENC_BIN" put --state "$STATE" --env "$env" "$NEW/in" ;;
    fault:*) run env RENC_FAULT="${point#fault:}:KILL" "$RENC_BIN" put --state "$STATE" --env "$env" "$NEW/in" ;;
  esac
  check "put killed at $point" test "$RC" -eq 137
  n=$(find "$DATA/$env/blobs" -type f ! -name '.*.renc-tmp.*' | wc -l)
  case $point in
    fault:*) check "put killed at $point: wholly old (no blob)" test "$n" -eq 0 ;;
  esac
  expect_ok renc put --env "$env" "$NEW/in"
  case $point in
    renameat:*) expect_out "completed an interrupted put of 600 files into $env" ;;
    fault:*) expect_out "interrupted put into $env" "temporary files are removed" "sealed 600 files" ;;
  esac
  expect_content "put killed at $point, rerun" "$DATA/$env/blobs/in" "$NEW/in"
  check "put killed at $point: one put in the history" test "$(history_count "$env" put)" = 1
  check "put killed at $point: no temporary left" test -z "$(reserved "$DATA/$env")"
done

# ---- A. restore killed at a rename or before the renames --------------------
expect_ok renc env create src
expect_ok renc env set-policy src --cmk local:cmk
mkdir -p "$WORK/rnew/in" "$WORK/rold/in"
for i in $(seq -w 0 399); do
  echo "restored $i" >"$WORK/rnew/in/f$i"
  echo "old content of $i" >"$WORK/rold/in/f$i"
done
expect_ok renc put --env src "$WORK/rnew/in"
expect_ok renc backup create --env src --name b400
BK=$DATA/src/backups/b400
for point in renameat:1 renameat:150 renameat:400 fault:write:200; do
  env=r$(tr -c 'a-z0-9' '-' <<<"$point" | sed 's/-*$//')
  expect_ok renc env create "$env"
  expect_ok renc env set-policy "$env" --cmk local:cmk
  expect_ok renc put --env "$env" "$WORK/rold/in"
  case $point in
    renameat:*) killed_at renameat "${point#renameat:}" "$RENC_BIN" restore --state "$STATE" "$BK" --target "$env" ;;
    fault:*) run env RENC_FAULT="${point#fault:}:KILL" "$RENC_BIN" restore --state "$STATE" "$BK" --target "$env" ;;
  esac
  check "restore killed at $point" test "$RC" -eq 137
  case $point in
    fault:*) expect_content "restore killed at $point: wholly old" "$DATA/$env/blobs/in" "$WORK/rold/in" ;;
  esac
  expect_ok renc restore "$BK" --target "$env"
  case $point in
    renameat:*) expect_out "completed an interrupted restore of 400 files into $env" ;;
    fault:*) expect_out "400 blobs" "restored" ;;
  esac
  expect_content "restore killed at $point, rerun" "$DATA/$env/blobs/in" "$WORK/rnew/in"
  check "restore killed at $point: one restore in the history" test "$(history_count "$env" restore)" = 1
  check "restore killed at $point: no temporary left" test -z "$(reserved "$DATA/$env")"
done
# Any later command completes it: here `env show`, then the rerun has nothing to do.
expect_ok renc env create rshow
expect_ok renc env set-policy rshow --cmk local:cmk
killed_at renameat 100 "$RENC_BIN" restore --state "$STATE" "$BK" --target rshow
check "restore killed at rename 100" test "$RC" -eq 137
expect_ok renc env show rshow
expect_out "completed an interrupted restore of 400 files into rshow"
expect_content "restore completed by env show" "$DATA/rshow/blobs/in" "$WORK/rnew/in"
check "restore completed by env show: one restore" test "$(history_count rshow restore)" = 1
check "restore completed by env show: no temporary left" test -z "$(reserved "$DATA/rshow")"
# And `run --env`: it settles the environment's interrupted write under its
# lock before it scans, so it moves the whole set.
expect_ok renc env create rrun
expect_ok renc env set-policy rrun --cmk local:cmk
killed_at renameat 100 "$RENC_BIN" restore --state "$STATE" "$BK" --target rrun
check "restore killed at rename 100 (rrun)" test "$RC" -eq 137
expect_ok renc run --env rrun --progress=none
expect_out "completed an interrupted restore of 400 files into rrun"
expect_content "restore completed by run --env" "$DATA/rrun/blobs/in" "$WORK/rnew/in"
check "restore completed by run --env: one restore" test "$(history_count rrun restore)" = 1
check "restore completed by run --env: no temporary left" test -z "$(reserved "$DATA/rrun")"

# ---- A. copy killed at a rename: both environments' history rows, once --------
expect_ok renc env create cpy
expect_ok renc env set-policy cpy --cmk local:cmk
killed_at renameat 200 "$RENC_BIN" copy --state "$STATE" --from src --to cpy
check "copy killed at rename 200" test "$RC" -eq 137
expect_ok renc copy --from src --to cpy
expect_out "completed an interrupted copy of 400 files into cpy" "nothing more to do"
expect_content "copy killed at rename 200, rerun" "$DATA/cpy/blobs/in" "$WORK/rnew/in"
check "copy killed: one copy-in row" test "$(history_count cpy copy-in)" = 1
check "copy killed: one copy-out row" test "$(history_count src copy-out)" = 1
check "copy killed: no temporary left" test -z "$(reserved "$DATA/cpy")"

# ---- B. names that merely contain ".renc-tmp." are data ------------------------
mkdir -p "$WORK/odd/in"
echo db >"$WORK/odd/in/db.renc-tmp.0123456789abcdef"
echo sales >"$WORK/odd/in/sales.renc-tmp.20240101"
echo plain >"$WORK/odd/in/plain.txt"
expect_ok renc env create odd
expect_ok renc env set-policy odd --cmk local:cmk
expect_ok renc put --env odd "$WORK/odd/in"
expect_out "sealed 3 files"
expect_ok renc backup create --env odd --name odd.renc
expect_out "3 blobs"
expect_ok renc env create odd2
expect_ok renc env set-policy odd2 --cmk local:cmk
expect_ok renc restore "$DATA/odd/backups/odd.renc" --target odd2
expect_out "3 blobs"
expect_content "odd names restored" "$DATA/odd2/blobs/in" "$WORK/odd/in"
# A reserved name is refused, naming it; nothing is sealed.
mkdir -p "$WORK/res/in"
echo a >"$WORK/res/in/a"
echo t >"$WORK/res/in/.db.renc-tmp.0123456789abcdef"
expect_exit 2 renc put --env odd "$WORK/res/in"
expect_msg ".db.renc-tmp.0123456789abcdef" "reserved" "nothing is sealed"
check "reserved name: nothing sealed" test ! -e "$DATA/odd/blobs/in/a"

# ---- C. never written through a symbolic link ----------------------------------
OUT=$WORK/outside
mkdir -p "$OUT"
expect_ok renc env create lnk
expect_ok renc env set-policy lnk --cmk local:cmk
mkdir -p "$DATA/lnk/blobs"
ln -s "$OUT" "$DATA/lnk/blobs/in"
echo one >"$WORK/one"
expect_exit 1 renc put --env lnk --name in/one "$WORK/one"
expect_msg "blobs/in is a symbolic link: not written through"
expect_exit 1 renc restore "$BK" --target lnk
expect_msg "blobs/in is a symbolic link: not written through" "nothing was restored"
expect_exit 1 renc copy --from src --to lnk
expect_msg "blobs/in is a symbolic link: not written through" "nothing was copied"
check "nothing landed outside the data" test -z "$(ls -A "$OUT")"
check "no temporary left in lnk" test -z "$(reserved "$DATA/lnk")"
expect_ok renc env show lnk
expect_out "status        warning" "1 entries are symbolic links or special files: not covered"
check "env show --json: not covered" test "$(renc env show lnk --json | jq .not_covered)" = 1
rm "$DATA/lnk/blobs/in"
# A version no blob names is still not called unused while a link hides
# what an environment holds.
expect_ok renc keys create lone
expect_ok renc env create blind
expect_ok renc env set-policy blind --cmk local:lone
mkdir -p "$DATA/blind/blobs"
ln -s "$OUT" "$DATA/blind/blobs/elsewhere"
expect_exit 1 renc keys disable lone/1
expect_msg "cannot tell whether local:lone/1 is still needed" "symbolic links" "--force"
rm "$DATA/blind/blobs/elsewhere"
expect_ok renc keys disable lone/1

# ---- D. a full disk names the file being written -----------------------------
tree_hashes "$DATA" >"$WORK/h.all"
RENC_FAULT=write:2:ENOSPC expect_exit 1 renc backup create --env src --name full.renc
expect_msg "writing" "backups/.full.renc.renc-tmp." "no space left on device"
check "backup on a full disk: no source blamed" not_in_err "$DATA/src/blobs"
RENC_FAULT=write:5:ENOSPC expect_exit 1 renc restore "$BK" --target rshow
expect_msg "writing" "blobs/in/.f" ".renc-tmp." "no space left on device" "nothing was restored"
check "restore on a full disk: the backup is not blamed" not_in_err "$BK:"
RENC_FAULT=write:5:ENOSPC expect_exit 1 renc copy --from src --to rshow
expect_msg "writing" "rshow/blobs/in/.f" "no space left on device" "nothing was copied"
if diff -q <(tree_hashes "$DATA") "$WORK/h.all" >/dev/null; then
  pass "full disk: nothing changed, no temporary left"
else
  fail "full disk: files changed"
fi
# A backup killed mid-way leaves a temporary: the next command removes it.
run env RENC_FAULT=write:2:KILL "$RENC_BIN" backup create --state "$STATE" --env src --name killed.renc
check "backup killed" test "$RC" -eq 137
check "the killed backup left its temporary" test -n "$(reserved "$DATA/src/backups")"
expect_ok renc env show src
expect_out "interrupted backup create into src" "temporary files are removed"
check "no backup temporary after env show" test -z "$(reserved "$DATA/src")"
expect_ok renc backup create --env src --name killed.renc
check "one backup row for killed.renc" test "$(renc env show src --json | jq '[.history[] | select(.action=="backup" and (.detail | startswith("killed.renc")))] | length')" = 1

finish
