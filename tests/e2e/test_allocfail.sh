#!/usr/bin/env bash
# tests/e2e/test_allocfail.sh — every allocation may fail: for each N the
# binary's N-th allocation through common/alloc fails (RENC_ALLOC_FAIL=N, a
# test-hooks seam), over a seal, an open, a small run, the resume of a
# crashed run, and the environment commands (a policy change, `run --env`, a
# backup and a restore), until N is past the last allocation the command
# makes.  Each
# time:
#   - the process exits 1 with a message, or 0 when it could do without that
#     allocation (no crash, no signal; in the
#     address-sanitizer build a leak or a bad access fails the exit code too);
#   - nothing is lost: every blob still opens to its original plaintext (old
#     or new, wholly), no temporary and no partial output is left;
#   - for the run and the resume, the same command without the fault then
#     completes and every blob is under the target.
# RENC_ALLOCFAIL_STRIDE=K tries every K-th N only (default 1: all).
source "$(dirname "$0")/lib.sh"

STRIDE=${RENC_ALLOCFAIL_STRIDE:-1}
P=$WORK/plain
mkdir -p "$P"

# one_try CMD...: runs CMD; sets DONE=1 when N was past its last allocation.
# Passes when it exited 0 (not reached) or 1 with a message.
one_try() {
  run "$@"
  DONE=0
  if grep -q "test hook: RENC_ALLOC_FAIL=.* not reached" "$WORK/err"; then
    DONE=1
    [ "$RC" -eq 0 ] || { fail "N=$N not reached, yet exit $RC: $*"; _show_last; return 1; }
    return 0
  fi
  # 0: the allocation was one the command can do without (a cache entry);
  # what it did is checked by the caller like any other outcome.
  [ "$RC" -eq 0 ] && return 0
  if [ "$RC" -ne 1 ] || ! grep -q "^reencrypt: " "$WORK/err"; then
    fail "N=$N: exit $RC (want 0, or 1 with a message): $*"
    _show_last
    return 1
  fi
  return 0
}

# tree_opens DIR SUMS [temps-ok]: every blob of DIR opens to the plaintext
# named in SUMS ("NAME SHA256" lines), and no temporary is left (unless
# temps-ok: a crashed run's temporaries stay until a run starts over them).
tree_opens() {
  local dir=$1 sums=$2 name sum got
  if [ -z "${3:-}" ] && [ -n "$(temporaries "$dir")" ]; then
    echo "    temporaries left in $dir" >&2
    return 1
  fi
  while read -r name sum; do
    rm -f "$WORK/open.out"
    "$RENC_BIN" decrypt --state "$STATE" "$dir/$name" "$WORK/open.out" >/dev/null 2>&1 ||
      { echo "    $name does not open" >&2; return 1; }
    got=$(sha256sum <"$WORK/open.out" | cut -d' ' -f1)
    [ "$got" = "$sum" ] || { echo "    $name opens to other bytes" >&2; return 1; }
  done <"$sums"
  rm -f "$WORK/open.out"
}

# all_under DIR REF: every blob's slot is REF.
all_under() {
  local f
  for f in "$1"/*.renc; do
    [ "$(renc inspect "$f" | jq -r '[.slots[].ref] | join(",")')" = "$2" ] ||
      { echo "    $f is not under $2" >&2; return 1; }
  done
}

renc keys create k >/dev/null
renc keys create k2 >/dev/null
mkdata "$P/in" 70000
: >"$WORK/sums"
mkdir -p "$WORK/tree0"
for i in 1 2 3; do
  mkdata "$P/p$i" $((i * 20000 + 7))
  renc encrypt --env e --key local:k "$P/p$i" "$WORK/tree0/b$i.renc" >/dev/null
  echo "b$i.renc $(sha256sum <"$P/p$i" | cut -d' ' -f1)" >>"$WORK/sums"
done
TARGET=$(renc keys list --json | jq -r '.[] | select(.name=="k2") | "local:k2/" + .current')

# ---- seal ---------------------------------------------------------------------
N=1; tries=0
while :; do
  RENC_ALLOC_FAIL=$N one_try renc encrypt --env e --key local:k "$P/in" "$WORK/sealed.renc"
  tries=$((tries + 1))
  [ "$DONE" = 1 ] && break
  no_output_left "$WORK" sealed.renc || fail "seal N=$N left output"
  N=$((N + STRIDE))
done
pass "seal: $tries allocation failures, each clean"
check "seal without a failure opens" renc decrypt "$WORK/sealed.renc" "$WORK/sealed.out"
expect_same "seal round trip" "$P/in" "$WORK/sealed.out"

# ---- open ---------------------------------------------------------------------
h_before=$(sha256sum <"$WORK/sealed.renc")
N=1; tries=0
while :; do
  RENC_ALLOC_FAIL=$N one_try renc decrypt "$WORK/sealed.renc" "$WORK/opened.out"
  tries=$((tries + 1))
  [ "$DONE" = 1 ] && break
  no_output_left "$WORK" opened.out || fail "open N=$N left output"
  N=$((N + STRIDE))
done
pass "open: $tries allocation failures, each clean"
check "open leaves its input as it was" test "$(sha256sum <"$WORK/sealed.renc")" = "$h_before"

# sweep_run WHAT ORIGINAL [JOURNALS]: the rekey run of a copy of ORIGINAL
# (at $WORK/tree; with JOURNALS, the crashed run's journals put back, so the
# run is its resume) with each allocation failing in turn; each time nothing
# is lost, and the same command without the fault completes.
sweep_run() {
  local what=$1 orig=$2 journals=${3:-} temps_ok=${3:+temps-ok}
  N=1; tries=0
  while :; do
    rm -rf "$WORK/tree" "$STATE/journals"
    cp -a "$orig" "$WORK/tree"
    [ -n "$journals" ] && cp -a "$journals" "$STATE/journals"
    RENC_ALLOC_FAIL=$N one_try renc run --to local:k2 --mode rekey --threads 1 --progress=none \
      "$WORK/tree"
    tries=$((tries + 1))
    if [ "$DONE" != 1 ]; then
      tree_opens "$WORK/tree" "$WORK/sums" $temps_ok || fail "$what N=$N lost a blob"
      run renc run --to local:k2 --mode rekey --threads 1 --progress=none "$WORK/tree"
      [ "$RC" -eq 0 ] || { fail "$what N=$N: the rerun exits $RC"; _show_last; }
    fi
    { tree_opens "$WORK/tree" "$WORK/sums" && all_under "$WORK/tree" "$TARGET"; } ||
      fail "$what N=$N: not every blob is under $TARGET after the rerun"
    [ "$DONE" = 1 ] && break
    N=$((N + STRIDE))
  done
  pass "$what: $tries allocation failures, each clean, each completed by a rerun"
}

# ---- a small run, in place, journaled ------------------------------------------
sweep_run run "$WORK/tree0"

# ---- the resume of a crashed run -------------------------------------------------
# Crashed at $WORK/tree (the journal names its sources by path), then kept.
rm -rf "$WORK/tree" "$STATE/journals"
cp -a "$WORK/tree0" "$WORK/tree"
# (--barrier file: killed at its second per-file barrier, temporaries left.)
run env RENC_FAULT=fsync:2:KILL "$RENC_BIN" run --state "$STATE" --to local:k2 --mode rekey \
  --threads 1 --barrier file --progress=none "$WORK/tree"
check "the run to resume was killed" test "$RC" -eq 137
check "the killed run left temporaries" test -n "$(temporaries "$WORK/tree")"
cp -a "$WORK/tree" "$WORK/crashed"
cp -a "$STATE/journals" "$WORK/journals.crashed"
sweep_run resume "$WORK/crashed" "$WORK/journals.crashed"

# ---- the environment commands --------------------------------------------------
# An environment `e` under BYOK k with three blobs, its policy moved to k2
# (run --env to do), and a backup of it; environment `dr` on the same key,
# empty.  Each sweep starts from a copy of that whole state.
ESTATE=$WORK/state.env
rm -rf "$STATE/journals" "$WORK/tree"
renc env create e >/dev/null && renc env set-policy e --byok local:k >/dev/null &&
  renc put --env e "$P/p1" "$P/p2" "$P/p3" >/dev/null &&
  renc backup create --env e --name bk.renc >/dev/null &&
  renc env create dr >/dev/null && renc env set-policy dr --byok local:k >/dev/null ||
  fail "environment setup"
: >"$WORK/esums"
for i in 1 2 3; do echo "p$i $(sha256sum <"$P/p$i" | cut -d' ' -f1)" >>"$WORK/esums"; done
cp -a "$STATE" "$ESTATE"
EDATA=$STATE/data

# env_sweep WHAT CHECK CMD...: CMD with each allocation failing in turn, on a
# fresh copy of the state; after each, CHECK (a function) says nothing was
# lost, and CMD without the fault then succeeds and CHECK done says so.
env_sweep() {
  local what=$1 check_fn=$2
  shift 2
  N=1; tries=0
  while :; do
    rm -rf "$STATE"
    cp -a "$ESTATE" "$STATE"
    RENC_ALLOC_FAIL=$N one_try "$@"
    tries=$((tries + 1))
    # Exit 0: the command did without that allocation, and is done.
    if [ "$DONE" != 1 ] && [ "$RC" -ne 0 ]; then
      $check_fn failed || fail "$what N=$N lost data"
      run "$@"
      [ "$RC" -eq 0 ] || { fail "$what N=$N: the command again without the fault exits $RC"; _show_last; }
    fi
    $check_fn done || fail "$what N=$N: not done after the command without the fault"
    [ "$DONE" = 1 ] && break
    N=$((N + STRIDE))
  done
  pass "$what: $tries allocation failures, each clean, each completed again"
}

# e's blobs open (old or new, wholly); once done, all under k2 and e settled.
check_policy() {
  tree_opens "$EDATA/e/blobs" "$WORK/esums" || return 1
  [ "$1" = done ] || return 0
  renc env show e --json | jq -e '.key_ref == "local:k2"' >/dev/null
}
check_run_env() {
  tree_opens "$EDATA/e/blobs" "$WORK/esums" || return 1
  renc env show e --json >/dev/null || return 1
  [ "$1" = done ] || return 0
  all_under_env e "$TARGET" && renc env show e --json | jq -e '.status == "encrypted"' >/dev/null
}
check_backup() {
  if [ "$1" = failed ]; then
    [ -z "$(find "$EDATA/e/backups" -name 'bk2*')" ] && tree_opens "$EDATA/e/blobs" "$WORK/esums"
    return
  fi
  renc restore-check "$EDATA/e/backups/bk2.renc" --target e >/dev/null
}
check_restore() {
  local n
  n=$(find "$EDATA/dr/blobs" -type f ! -name '.*' | wc -l)
  [ -z "$(temporaries "$EDATA/dr/blobs")" ] || return 1
  # all or nothing: a failed restore leaves dr empty
  [ "$1" = failed ] && [ "$n" -eq 0 ] && return 0
  [ "$n" -eq 3 ] && tree_opens "$EDATA/dr/blobs" "$WORK/esums"
}
# all_under_env ENV REF: every blob of ENV has the single slot REF.
all_under_env() {
  local f
  while IFS= read -r -d '' f; do
    [ "$(renc inspect "$f" | jq -r '[.slots[].ref] | join(",")')" = "$2" ] || return 1
  done < <(find "$EDATA/$1/blobs" -type f ! -name '.*' -print0)
}

env_sweep "env set-policy" check_policy renc env set-policy e --byok local:k2
renc env set-policy e --byok local:k2 >/dev/null || fail "set-policy for the run sweep"
rm -rf "$ESTATE" && cp -a "$STATE" "$ESTATE"
env_sweep "run --env" check_run_env renc run --env e --threads 1 --progress=none
env_sweep "backup create" check_backup renc backup create --env e --name bk2.renc
env_sweep "restore" check_restore renc restore "$EDATA/e/backups/bk.renc" --target dr

finish
