#!/usr/bin/env bash
# tests/e2e/test_fullstop.sh — a destination that can take no more (a full
# disk) stops the run, which says so once.
#
# (a) The fault seam fails one write with ENOSPC (RENC_FAULT=write:N:ENOSPC)
#     in a rekey of 300 small blobs: the run stops claiming blobs, its
#     standard error is a few lines — the blob that met it, and "stopped: no
#     space left on device writing DIR; N blobs not started, resume with the
#     same command" — and the same command then finishes.
# (b) A real full file system (a small tmpfs, in a mount namespace of its
#     own, when this machine lets the test make one): every blob the run
#     tries fails the same way; standard error is still a few lines, with
#     the cause; every blob is as it was; once the file system has room, the
#     same command finishes.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RENC_BIN=$(realpath "$RENC_BIN")
cd "$WORK" || exit 2
sanitizer_logs
expect_ok renc keys create a
expect_ok renc keys create b

# corpus DIR N: N blobs of 1-3 KiB under local:a in DIR/d0 and DIR/d1 (ten
# sealed, the others copies of them: a seal costs a process).
corpus() {
  local dir=$1 n=$2 i
  mkdir -p "$dir/d0" "$dir/d1" "$WORK/pl"
  for ((i = 0; i < 10; i++)); do
    mkdata "$WORK/pl/p" $((1000 + i * 200))
    renc encrypt --env t --key local:a "$WORK/pl/p" "$WORK/pl/s$i.renc" >/dev/null ||
      fail "seal $i"
  done
  for ((i = 0; i < n; i++)); do
    cp "$WORK/pl/s$((i % 10)).renc" "$dir/d$((i % 2))/b$(printf %03d $i).renc"
  done
}

# all_under DIR REF N: the N blobs under DIR name REF only.
all_under() {
  local got
  got=$(slot_refs "$1")
  [ "$got" = "$2 $3" ] || { echo "    slot refs: $got" | head -n 3 >&2; return 1; }
}

# ---- (a) the fault seam -----------------------------------------------------------
SRC=$WORK/src
corpus "$SRC" 300
ARGS=(--to local:b --mode rekey --threads 1 --progress=none "$SRC")
run env RENC_FAULT=write:40:ENOSPC "$RENC_BIN" run --state "$STATE" "${ARGS[@]}"
check "(a) the run on a full disk exits 1 (got $RC)" test "$RC" -eq 1
nerr=$(wc -l <"$WORK/err")
check "(a) standard error is a few lines, not one a blob (got $nerr)" test "$nerr" -le 4 || _show_last
expect_msg "No space left on device" "stopped: no space left on device writing $SRC/d" \
  "blobs not started, resume with the same command"
notstarted=$(sed -n 's/.*; \([0-9]*\) blobs not started.*/\1/p' "$WORK/err")
# (A batch is up to 128 blobs under --barrier batch, 32 under file: the
# write that fails is in the first batch or two.)
check "(a) most blobs were not started (${notstarted:-none})" test "${notstarted:-0}" -ge 150
expect_no_temporaries "(a)" "$SRC"
expect_ok renc run "${ARGS[@]}"
expect_out "resuming run"
check "(a) after the resume every blob is under local:b/1" all_under "$SRC" local:b/1 300
expect_ok renc verify --progress=none "$SRC"

# ---- (b) a real full file system ------------------------------------------------
FULL=$WORK/full
mkdir -p "$FULL"
if unshare -m true 2>/dev/null; then
  corpus "$WORK/full.seed" 120
  cat >"$WORK/ns.sh" <<'EOF'
# Inside the mount namespace: $1 WORK, $2 RENC_BIN, $3 STATE.
set -u
W=$1 B=$2 S=$3
mount -t tmpfs -o size=2M tmpfs "$W/full" || exit 90
cp -a "$W/full.seed/." "$W/full/" || exit 91
dd if=/dev/zero of="$W/full/fill" bs=4k status=none 2>/dev/null # up to ENOSPC
(cd "$W/full" && find d0 d1 -type f | sort | xargs sha256sum) >"$W/full.before"
"$B" run --state "$S" --to local:b --mode rekey --threads 1 --progress=none "$W/full" \
  >"$W/full.out" 2>"$W/full.err"
echo $? >"$W/full.rc"
(cd "$W/full" && find d0 d1 -type f | sort | xargs sha256sum) >"$W/full.after"
find "$W/full" -name '*.renc-tmp.*' >"$W/full.tmps"
rm -f "$W/full/fill"
mount -o remount,size=8M "$W/full" || exit 92
"$B" run --state "$S" --to local:b --mode rekey --threads 1 --progress=none "$W/full" \
  >"$W/full2.out" 2>"$W/full2.err"
echo $? >"$W/full2.rc"
cp -a "$W/full" "$W/full.final"
"$B" verify --state "$S" --progress=none "$W/full" >/dev/null 2>&1
echo $? >"$W/full2.verify"
EOF
  unshare -m bash "$WORK/ns.sh" "$WORK" "$RENC_BIN" "$STATE"
  nsrc=$?
  check "(b) the tmpfs was made and filled (namespace script exit $nsrc)" test "$nsrc" -eq 0
  check "(b) the run on the full file system exits 1 (got $(cat "$WORK/full.rc"))" \
    test "$(cat "$WORK/full.rc")" = 1
  nerr=$(wc -l <"$WORK/full.err")
  check "(b) standard error is a few lines, not one a blob (got $nerr)" test "$nerr" -le 13
  [ "$nerr" -le 13 ] || head -n 3 "$WORK/full.err" | sed 's/^/    stderr: /' >&2
  check "(b) the cause is named" grep -q "No space left on device" "$WORK/full.err"
  check "(b) the full disk is told once, with its folder" \
    test "$(grep -c "no space left on device writing $FULL/d" "$WORK/full.err")" -eq 1
  check "(b) every blob is as it was" cmp -s "$WORK/full.before" "$WORK/full.after"
  check "(b) no temporaries" test ! -s "$WORK/full.tmps"
  check "(b) with room again the same command finishes (exit $(cat "$WORK/full2.rc"))" \
    test "$(cat "$WORK/full2.rc")" = 0
  check "(b) every blob is then under local:b/1" all_under "$WORK/full.final" local:b/1 120
  check "(b) and every blob verifies" test "$(cat "$WORK/full2.verify")" = 0
else
  echo "NOTE: no mount namespace here: the real full file system case is not run"
fi

expect_no_sanitizer_reports
finish
