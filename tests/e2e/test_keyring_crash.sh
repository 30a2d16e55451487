#!/usr/bin/env bash
# tests/e2e/test_keyring_crash.sh — keyring changes are crash-safe: `keys
# create` (aes256 and rsa2048) and `keys rotate` are killed (SIGKILL, by
# strace's fault injection) at every rename, link, unlink, mkdir, rmdir,
# write and fsync they make, one point at a time, each from the same
# keyring.  After each kill every command sees the old key state or the new
# one (never "malformed"), the same command run again completes, nothing
# but the state and the material it names is left in the key's folder, the
# key seals and opens a file, and a blob sealed before under version 1
# still opens.  A change that fails (EIO injected) rather than being
# killed removes what it left at once.  Then the leftovers of earlier
# releases (a rotation's unnamed material and its state.tmp.PID, a
# create's empty folder) are redone over, and names the keyring reserves
# are refused.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
sanitizer_logs

KR=$STATE/keyring
D=$WORK/data
mkdir -p "$D"
mkdata "$D/plain" 5000

expect_ok renc keys create k
expect_ok renc keys create r --type rsa2048
expect_ok renc encrypt --env e --key local:k "$D/plain" "$D/old-k.renc"
expect_ok renc encrypt --env e --key local:r "$D/plain" "$D/old-r.renc"
cp -a "$KR" "$WORK/pristine"

# fresh: the keyring as it was before any kill.
fresh() {
  rm -rf "$KR"
  cp -a "$WORK/pristine" "$KR"
}

# current NAME: the key's current version in `keys list --json`, "" when it
# has none ("-" when the list fails).
current() {
  renc keys list --json 2>/dev/null | jq -r --arg n "$1" '[.[] | select(.name == $n) | .current][0] // ""' ||
    echo -
}

# folder_exact NAME: the key's folder holds its state and the material of
# each version it names, nothing else (no temporary, no unnamed material),
# every file 0600.
folder_exact() {
  local name=$1 f names=() modes
  # (bash globs and one jq, not ls, find and sort: this runs after every kill)
  for f in "$KR/$name"/* "$KR/$name"/.[!.]*; do
    [ -e "$f" ] && names+=("${f##*/}")
  done
  local verdict
  verdict=$(renc keys list --json | jq -r --arg n "$name" --arg got "${names[*]}" '
    ([.[] | select(.name == $n) | .versions[] |
      .version + (if .type == "aes256" then ".key" else ".pem" end)] + ["state"] | sort) as $want |
    ($got | split(" ") | sort) as $have |
    if $want == $have then "ok"
    else "\($n) holds: \($have | join(" ")), wanted: \($want | join(" "))" end')
  [ "$verdict" = ok ] || { echo "    $verdict" >&2; return 1; }
  modes=$(stat -c %a "$KR/$name"/*)
  [[ $modes =~ ^(600$'\n')*600$ ]]
}

# differs A B: the two files' bytes differ.
differs() {
  ! cmp -s -- "$1" "$2"
}

# seals_and_opens NAME: a file sealed under local:NAME opens to itself.
seals_and_opens() {
  rm -f "$D/new.renc" "$D/new.out"
  "$RENC_BIN" encrypt --state "$STATE" --env e --key "local:$1" "$D/plain" "$D/new.renc" >/dev/null 2>&1 &&
    "$RENC_BIN" decrypt --state "$STATE" "$D/new.renc" "$D/new.out" >/dev/null 2>&1 &&
    same "$D/plain" "$D/new.out"
}

# old_open [NAME]: the blobs sealed before the kills under local:NAME/1
# (k and r: both) open.
old_open() {
  local b
  for b in ${1:-k r}; do
    rm -f "$D/old.out"
    "$RENC_BIN" decrypt --state "$STATE" "$D/old-$b.renc" "$D/old.out" >/dev/null 2>&1 &&
      same "$D/plain" "$D/old.out" || return 1
  done
}

# old_refused NAME: the blob sealed before under local:NAME/1 does not open.
old_refused() {
  ! old_open "$1"
}

# after_kill DESC NAME OLD NEW CMD...: the checks after CMD (a keys command
# on NAME) was killed: the current version is OLD or NEW ("" for no key);
# `keys versions` works or, with no key, says "not found"; CMD run again
# completes: exit 0 when the kill came before the commit, and for a create
# that had committed "exists" (the key was made); then the folder is exact,
# the key seals and opens, and the old blobs open.
after_kill() {
  local desc=$1 name=$2 old=$3 new=$4 cur
  shift 4
  cur=$(current "$name")
  if [ "$cur" = "$old" ] || [ "$cur" = "$new" ]; then
    pass "$desc: keys list shows the old or the new state"
  else
    fail "$desc: keys list says current '$cur', wanted '$old' or '$new'"
    renc keys list >&2
  fi
  run renc keys versions "$name"
  if [ -n "$cur" ] && [ "$RC" -eq 0 ]; then
    pass "$desc: keys versions works"
  elif [ -z "$cur" ] && [ "$RC" -eq 1 ] && grep -qi "not found" "$WORK/err"; then
    pass "$desc: keys versions: no key yet"
  else
    fail "$desc: keys versions exited $RC"
    _show_last
  fi
  run renc "$@"
  if [ "$RC" -eq 0 ] || { [ "$1" = keys ] && [ "$2" = create ] && [ -n "$cur" ] &&
    [ "$RC" -eq 1 ] && grep -q "exists" "$WORK/err"; }; then
    pass "$desc: run again, it completes"
  else
    fail "$desc: run again, it exited $RC"
    _show_last
  fi
  check "$desc: only the state and its material in the folder" folder_exact "$name"
  check "$desc: the key seals and opens a file" seals_and_opens "$name"
  local blob=k
  [ "$name" = r ] && blob=r
  check "$desc: blobs sealed before under version 1 open" old_open "$blob"
}

# states NAME: "KEY-STATE VERSION:STATE,..." of the key in `keys list
# --json` ("-" when the list fails).
states() {
  renc keys list --json 2>/dev/null | jq -r --arg n "$1" '.[] | select(.name == $n) |
    .state + " " + ([.versions[] | .version + ":" + .state] | join(","))' || echo -
}

# after_state_kill DESC NAME OLD NEW CMD...: the checks after CMD, a change
# of states (disable, revoke, restore), was killed: `keys list` shows the
# OLD or the NEW states (and `keys versions` works), CMD run again exits 0
# and leaves NEW, the folder is exact, and the blob sealed before under
# version 1 opens exactly when NEW leaves version 1 enabled.
after_state_kill() {
  local desc=$1 name=$2 old=$3 new=$4 got
  shift 4
  got=$(states "$name")
  if [ "$got" = "$old" ] || [ "$got" = "$new" ]; then
    pass "$desc: keys list shows the old or the new state"
  else
    fail "$desc: keys list shows '$got', wanted '$old' or '$new'"
  fi
  run renc keys versions "$name"
  [ "$RC" -eq 0 ] && pass "$desc: keys versions works" || { fail "$desc: keys versions exited $RC"; _show_last; }
  run renc "$@"
  [ "$RC" -eq 0 ] && pass "$desc: run again, it completes" || { fail "$desc: run again, it exited $RC"; _show_last; }
  check "$desc: run again, it leaves '$new'" test "$(states "$name")" = "$new"
  check "$desc: only the state and its material in the folder" folder_exact "$name"
  if [[ $new == "enabled 1:enabled"* ]]; then
    check "$desc: blobs sealed before under version 1 open" old_open "$name"
  else
    check "$desc: blobs sealed before under version 1 are refused" old_refused "$name"
  fi
}

SYSCALLS=mkdir,mkdirat,rename,renameat,renameat2,link,linkat,unlink,unlinkat,rmdir,write,fsync,fdatasync

# kill_sweep DESC NAME OLD NEW CMD...: CMD, from a fresh keyring, first
# traced to its end (it must complete) to count its calls of each syscall of
# $SYSCALLS (or of $ONLY when set), then killed at each of those calls in
# turn (the N-th call of one syscall, N = 1 .. its count), each time from a
# fresh keyring (and $PREP run on it, when set), with $AFTER (after_kill
# unless set) after each kill.
kill_sweep() {
  local desc=$1 name=$2 old=$3 new=$4 sys n count kills=0
  shift 4
  fresh
  { [ -z "${PREP:-}" ] || $PREP >/dev/null 2>&1; }
  # (LeakSanitizer cannot work under ptrace: off for the traced processes.)
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f -qq -o "$WORK/trace" -e trace="${ONLY:-$SYSCALLS}" \
    "$RENC_BIN" "$1" --state "$STATE" "${@:2}" >/dev/null 2>&1
  check "$desc: with no kill it completes" test $? -eq 0
  while read -r count sys; do
    for ((n = 1; n <= count; n++)); do
      fresh
      { [ -z "${PREP:-}" ] || $PREP >/dev/null 2>&1; }
      { ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
          strace -f -qq -o /dev/null -e trace="$sys" -e inject="$sys:signal=KILL:when=$n" \
          "$RENC_BIN" "$1" --state "$STATE" "${@:2}" >/dev/null 2>&1; } 2>/dev/null
      RC=$?
      if [ "$RC" -ne 137 ]; then
        fail "$desc at $sys #$n: exit $RC, wanted the kill (137)"
        continue
      fi
      kills=$((kills + 1))
      ${AFTER:-after_kill} "$desc killed at $sys #$n" "$name" "$old" "$new" "$@"
    done
  done < <(grep -oE '^([0-9]+ +)?[a-z0-9_]+\(' "$WORK/trace" | grep -oE '[a-z0-9_]+\($' |
    tr -d '(' | sort | uniq -c)
  check "$desc: $kills kills" test "$kills" -ge 4
}

# error_sweep DESC NAME OLD NEW CMD...: CMD failed (EIO) at each call of
# each syscall of write, fsync, rename and link in turn, from a fresh
# keyring: the current version is then OLD or NEW, and a change that failed
# (rather than being killed) has already removed what it left: the key's
# folder holds only its state and the material it names, or, when there is
# no key, is gone.
error_sweep() {
  local desc=$1 name=$2 old=$3 new=$4 sys n count cur errs=0
  shift 4
  fresh
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f -qq -o "$WORK/trace" -e trace=write,fsync,rename,link \
    "$RENC_BIN" "$1" --state "$STATE" "${@:2}" >/dev/null 2>&1
  while read -r count sys; do
    for ((n = 1; n <= count; n++)); do
      fresh
      { ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
          strace -f -qq -o /dev/null -e trace="$sys" -e inject="$sys:error=EIO:when=$n" \
          "$RENC_BIN" "$1" --state "$STATE" "${@:2}" >/dev/null 2>&1; } 2>/dev/null
      errs=$((errs + 1))
      cur=$(current "$name")
      if [ "$cur" != "$old" ] && [ "$cur" != "$new" ]; then
        fail "$desc, EIO at $sys #$n: current '$cur', wanted '$old' or '$new'"
      elif [ -n "$cur" ]; then
        check "$desc, EIO at $sys #$n: nothing left behind" folder_exact "$name"
      else
        check "$desc, EIO at $sys #$n: no key folder left" test ! -e "$KR/$name"
      fi
    done
  done < <(grep -oE '^([0-9]+ +)?[a-z0-9_]+\(' "$WORK/trace" | grep -oE '[a-z0-9_]+\($' |
    tr -d '(' | sort | uniq -c)
  check "$desc: $errs failures" test "$errs" -ge 8
}

if ! strace -f -qq -o /dev/null -e trace=fsync -e inject=fsync:signal=KILL:when=1000 true 2>/dev/null; then
  echo "NOTE: no strace with fault injection: the kills are skipped"
else
  kill_sweep "rotate (aes256)" k 1 2 keys rotate k
  # An RSA rotation makes the calls an AES one does (it reads the current
  # version's size first): killed where its material and state are made
  # durable and put in place.
  ONLY=fsync,link,rename kill_sweep "rotate (rsa2048)" r 1 2 keys rotate r
  AFTER=after_state_kill kill_sweep "disable" k "enabled 1:enabled" "enabled 1:disabled" \
    keys disable k/1 --force
  AFTER=after_state_kill kill_sweep "revoke" k "enabled 1:enabled" "revoked 1:revoked" keys revoke k
  AFTER=after_state_kill PREP="renc keys revoke k" kill_sweep "restore" k "revoked 1:revoked" \
    "enabled 1:enabled" keys restore k
  kill_sweep "create (aes256)" n "" 1 keys create n
  # An RSA create differs in the material only: killed before its key is
  # generated (the first fsync, of the new folder's entry), while its
  # material and its state are made durable, and around their renames.
  ONLY=fsync,link,rename kill_sweep "create (rsa2048)" nr "" 1 keys create nr --type rsa2048
  error_sweep "rotate" k 1 2 keys rotate k
  error_sweep "create" n "" 1 keys create n
fi

# ---- what earlier releases left -------------------------------------------
# A rotation killed at its state's rename left version 2's material, unnamed,
# and the state's temporary (FILE.tmp.PID): the next rotate redoes it.
fresh
head -c 32 /dev/urandom >"$KR/k/2.key"
cp "$KR/k/state" "$KR/k/state.tmp.4242"
printf 'x' >"$KR/k/2.key.tmp.4242"
chmod 600 "$KR/k/2.key" "$KR/k/state.tmp.4242" "$KR/k/2.key.tmp.4242"
cp "$KR/k/2.key" "$WORK/stale.key"
check "leftover rotation: keys list shows version 1" test "$(current k)" = 1
expect_ok renc keys rotate k
expect_out "current version is now 2"
check "leftover rotation: temporaries gone, version 2 named" folder_exact k
check "leftover rotation: version 2 is new material" differs "$KR/k/2.key" "$WORK/stale.key"
check "leftover rotation: old blobs open" old_open
check "leftover rotation: the key seals and opens" seals_and_opens k

# A create killed while generating its key left an empty folder: the key does
# not exist (list, versions) and create makes it.
fresh
mkdir -m 700 "$KR/half"
expect_ok renc keys list
check "empty key folder: not listed" test -z "$(current half)"
expect_exit 1 renc keys versions half
expect_msg "not found"
expect_ok renc keys create half --type rsa2048
check "empty key folder: made" folder_exact half
check "empty key folder: the key seals and opens" seals_and_opens half

# A folder without a state that holds a file the keyring never makes is left
# alone, and create says so.
fresh
mkdir -m 700 "$KR/odd"
echo mine >"$KR/odd/notes.txt"
expect_exit 1 renc keys create odd
expect_msg "$KR/odd" "malformed"
check "a foreign file is not removed" test -f "$KR/odd/notes.txt"
# Nor is one holding the material of a version a create does not make (a
# rotated key whose state was lost): that may be the only copy of a KEK.
fresh
mkdir -m 700 "$KR/lost"
head -c 32 /dev/urandom >"$KR/lost/1.key"
head -c 32 /dev/urandom >"$KR/lost/2.key"
chmod 600 "$KR/lost/"*
expect_exit 1 renc keys create lost
expect_msg "$KR/lost" "malformed"
check "a lost state's material is not removed" test -f "$KR/lost/1.key" -a -f "$KR/lost/2.key"

# ---- names --------------------------------------------------------------
fresh
expect_exit 2 renc keys create .lock
expect_msg ".lock" "reserved"
check "keys create .lock: the lock file is untouched" test -f "$KR/.lock" -a ! -d "$KR/.lock"
expect_exit 2 renc keys create .hidden
expect_msg "reserved"
expect_exit 2 renc keys create ''
expect_msg "empty"
expect_exit 2 renc keys create a/b/c
expect_msg "'/'"
expect_exit 2 renc keys create "$(printf 'x%.0s' {1..129})"
expect_msg "longer than 128"
expect_exit 2 renc keys rotate .lock
expect_msg "reserved"
check "refused names make no folder" test ! -e "$KR/.hidden" -a ! -e "$KR/a"

expect_no_sanitizer_reports
finish
