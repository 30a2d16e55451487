#!/usr/bin/env bash
# tests/e2e/test_allocfail.sh — every allocation may fail: for each N the
# binary's N-th allocation through common/alloc fails (RENC_ALLOC_FAIL=N, a
# test-hooks seam), over a seal, an open, a small run and the resume of a
# crashed run, until N is past the last allocation the command makes.  Each
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
run env RENC_FAULT=fsync:2:KILL "$RENC_BIN" run --state "$STATE" --to local:k2 --mode rekey \
  --threads 1 --progress=none "$WORK/tree"
check "the run to resume was killed" test "$RC" -eq 137
check "the killed run left temporaries" test -n "$(temporaries "$WORK/tree")"
cp -a "$WORK/tree" "$WORK/crashed"
cp -a "$STATE/journals" "$WORK/journals.crashed"
sweep_run resume "$WORK/crashed" "$WORK/journals.crashed"

finish
