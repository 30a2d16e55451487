#!/usr/bin/env bash
# tests/e2e/test_out_self.sh — `run --out DIR` never writes a source.
#
# Each way a mirror path can land on a source is refused (exit 2, the source
# named) before anything is written: a file given as SOURCE with --out its
# own folder; manifest lines relative to --out; an --out above a source
# folder whose mirror would go back inside it (onto another source item, or
# beside them); a hard link of the source, and the same folder mounted a
# second time (a bind mount, when this machine lets the test make one), where
# only the device and inode tell.  The sources stay byte for byte as they
# were.  An --out beside the sources still works.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RENC_BIN=$(realpath "$RENC_BIN")
cd "$WORK" || exit 2
sanitizer_logs
expect_ok renc keys create a
expect_ok renc keys create b
mkdata "$WORK/plain" 5000

seal() {
  mkdir -p "$(dirname "$1")"
  renc encrypt --env t --key local:a "$WORK/plain" "$1" >/dev/null || fail "seal $1"
}

# refused DESC DIR ARGS...: `run --to local:b --mode rekey ARGS` started in
# DIR exits 2 naming a source, and DIR's tree is unchanged.
refused() {
  local desc=$1 dir=$2 before
  shift 2
  before=$(tree_hashes "$dir")
  (cd "$dir" && "$RENC_BIN" run --state "$STATE" --to local:b --mode rekey --progress=none \
    "$@" >"$WORK/out" 2>"$WORK/err")
  RC=$?
  check "$desc: refused with exit 2 (got $RC)" test "$RC" -eq 2 || _show_last
  expect_msg "sources are never written with --out"
  check "$desc: the sources are unchanged" test "$(tree_hashes "$dir")" = "$before"
  check "$desc: no temporaries" test -z "$(temporaries "$dir")"
}

# 1. run --out . f.dat
mkdir -p "$WORK/one" && seal "$WORK/one/f.dat"
refused "a file and --out its own folder" "$WORK/one" --out . f.dat
expect_msg "f.dat would be written over itself"

# 2. a manifest of relative paths, --out .
mkdir -p "$WORK/man" && seal "$WORK/man/d/g.dat" && seal "$WORK/man/h.dat"
printf 'd/g.dat\nh.dat\n' >"$WORK/man/list.txt"
refused "manifest lines relative to --out" "$WORK/man" --out . --manifest list.txt
expect_msg "d/g.dat would be written over itself" "h.dat would be written over itself"
# ... and --out one of its folders: h.dat's mirror would be d/h.dat, another source.
seal "$WORK/man/d/h.dat"
printf 'h.dat\nd/h.dat\n' >"$WORK/man/two.txt"
refused "a manifest's mirror onto another of its files" "$WORK/man" --out d --manifest two.txt
expect_msg "h.dat would be written over the source d/h.dat"

# 3. --out above a source folder: the mirror of a/a/x is a/x, another source.
mkdir -p "$WORK/up" && seal "$WORK/up/a/x" && seal "$WORK/up/a/a/x" && seal "$WORK/up/a/a/y"
refused "--out above the source folder" "$WORK/up" --out . a
expect_msg "a/a/x would be written over the source a/x" "inside the source"

# 4. a hard link of the source under --out
mkdir -p "$WORK/hl/src" "$WORK/hl/out" && seal "$WORK/hl/src/k.dat"
ln "$WORK/hl/src/k.dat" "$WORK/hl/out/k.dat"
refused "a hard link of the source as its mirror" "$WORK/hl" --out out src/k.dat
expect_msg "src/k.dat would be written over itself"

# 5. the source folder mounted again as --out (only the inode tells)
mkdir -p "$WORK/bind/src" "$WORK/bind/again" && seal "$WORK/bind/src/m.dat"
if unshare -m true 2>/dev/null; then
  before=$(tree_hashes "$WORK/bind/src")
  unshare -m sh -c 'mount --bind "$1/bind/src" "$1/bind/again" &&
    exec "$2" run --state "$3" --to local:b --mode rekey --progress=none --out "$1/bind/again" \
      "$1/bind/src"' sh "$WORK" "$RENC_BIN" "$STATE" >"$WORK/out" 2>"$WORK/err"
  RC=$?
  check "a bind mount of the source as --out: refused with exit 2 (got $RC)" test "$RC" -eq 2 ||
    _show_last
  expect_msg "m.dat would be written over itself"
  check "a bind mount of the source as --out: the source is unchanged" \
    test "$(tree_hashes "$WORK/bind/src")" = "$before"
else
  echo "NOTE: no mount namespace here: the bind mount case is not run"
fi

# 6. an --out beside the sources works, and leaves them as they were.
before=$(tree_hashes "$WORK/up/a")
expect_ok renc run --to local:b --mode rekey --progress=none --out "$WORK/mirror" "$WORK/up/a"
check "an --out beside the source: the source is unchanged" \
  test "$(tree_hashes "$WORK/up/a")" = "$before"
renc decrypt "$WORK/mirror/a/x" "$WORK/x.plain" >/dev/null 2>&1
check "an --out beside the source: its mirror opens" same "$WORK/x.plain" "$WORK/plain"
check "an --out beside the source: the mirror is under the target" \
  test "$(renc inspect "$WORK/mirror/a/x" | jq -r '[.slots[].ref] | join(",")')" = local:b/1

expect_no_sanitizer_reports
finish
