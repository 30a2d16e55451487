#!/usr/bin/env bash
# tests/e2e/test_tamper.sh — decrypt refuses every tampered, truncated,
# reordered or malformed blob: it exits 2 (bad input, docs/CLI.md), names
# the file and the cause, and leaves no output and no temporary behind, even
# when the records before the damaged one verified and were already written.
#
# Blobs: 3.5 segments of 4 KiB raw, the same compressed, and the same sealed
# from a pipe (length unknown).  Byte surgery is done by a small python
# helper over the record layout, which starts at inspect's header_len.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

D=$WORK/data
O=$WORK/outdir   # decrypt's output folder: must stay empty
mkdir -p "$D" "$O"
S=4096
N=$((3 * S + S / 2))   # 3.5 segments: records of 4116, 4116, 4116 and 2068 bytes
AUTH="record authentication failed"

expect_ok renc keys create k
mkdata "$D/plain" "$N" random
mkdata "$D/text" "$N" text
expect_ok renc encrypt --env t --key local:k --segment-size 4K "$D/plain" "$D/raw.renc"
expect_ok renc encrypt --env t --key local:k --segment-size 4K --compress "$D/text" "$D/z.renc"
expect_exit_stdin 0 "$D/plain" renc encrypt --env t --key local:k --segment-size 4K - "$D/pipe.renc"

HL_RAW=$(inspect_field "$D/raw.renc" .header_len)
HL_Z=$(inspect_field "$D/z.renc" .header_len)
read -r HL_PIPE PIPE_LEN < <(inspect_field "$D/pipe.renc" '"\(.header_len) \(.plaintext_len)"')
check "stdin-mode blob has unknown length" test "$PIPE_LEN" = null

# The helper, surgery.py, reads jobs from standard input, one a line:
#   SRC DST HEADER_LEN OP ARGS...
# and writes each DST from SRC by one edit: one python process for all the
# jobs, since interpreter start-up is the slow part.  Records are found by
# walking the length words from HEADER_LEN.  Ops:
#   layout                  print "offset length ..." of the records (DST unused)
#   flip OFFSET BIT         flip one bit at an absolute offset
#   recflip I PART OFF BIT  flip a bit in record I's word|ct|tag, at OFF from
#                           that part's start (negative: from its end)
#   swap I J                exchange records I and J
#   drop I                  remove record I (-1: the last)
#   dup I                   append a copy of record I
#   append N                append N bytes of garbage
#   truncate LEN            keep the first LEN bytes
#   cutrec I OFF            keep everything before record I, and OFF of its bytes
cat >"$WORK/surgery.py" <<'PY'
import os, struct, sys


def records(b, hl):
    recs, off = [], hl
    while off + 4 <= len(b):
        clen = struct.unpack(">I", b[off:off + 4])[0] & 0x7FFFFFFF
        recs.append((off, 4 + clen + 16))
        off += 4 + clen + 16
    assert off == len(b), "records do not end at end of file"
    return recs


def job(src, dst, hl, op, args):
    b = bytearray(open(src, "rb").read())
    recs = records(b, int(hl))

    def rec(i):
        o, n = recs[int(i)]
        return bytes(b[o:o + n])

    if op == "layout":
        print(" ".join("%d %d" % r for r in recs))
        return
    elif op == "flip":
        b[int(args[0])] ^= 1 << int(args[1])
    elif op == "recflip":
        o, n = recs[int(args[0])]
        part, at, bit = args[1], int(args[2]), int(args[3])
        start, size = {"word": (o, 4), "ct": (o + 4, n - 20), "tag": (o + n - 16, 16)}[part]
        assert size > 0
        b[start + (at % size)] ^= 1 << bit
    elif op == "swap":
        order = list(range(len(recs)))
        i, j = int(args[0]), int(args[1])
        order[i], order[j] = order[j], order[i]
        b = b[:int(hl)] + b"".join(rec(k) for k in order)
    elif op == "drop":
        o, n = recs[int(args[0])]
        del b[o:o + n]
    elif op == "dup":
        b += rec(args[0])
    elif op == "append":
        b += os.urandom(int(args[0]))
    elif op == "truncate":
        del b[int(args[0]):]
    elif op == "cutrec":
        o, n = recs[int(args[0])]
        del b[o + int(args[1]):]
    else:
        raise SystemExit("unknown op " + op)
    open(dst, "wb").write(b)


for line in sys.stdin:
    w = line.split()
    if w:
        job(w[0], w[1], w[2], w[3], w[4:])
PY

# tamper NAME SRC HL OP ARGS... -- WORDS...: plans $D/NAME, made from $D/SRC
# by one edit, to be refused naming WORDS (the cause) by run_tampered.
CASES=()
declare -A WORDS
: >"$WORK/jobs"
tamper() {
  local name=$1 src=$2 hl=$3
  shift 3
  local sargs=()
  while [ "$1" != -- ]; do sargs+=("$1"); shift; done
  shift
  echo "$D/$src $D/$name $hl ${sargs[*]}" >>"$WORK/jobs"
  CASES+=("$name")
  WORDS[$name]=$(printf '%s\n' "$@")
}

# refused NAME WORDS...: decrypting $D/NAME exits 2, names the file and
# WORDS, and leaves nothing in $O.
refused() {
  local name=$1
  shift
  expect_exit 2 renc decrypt "$D/$name" "$O/$name.out"
  expect_msg "$D/$name" "$@"
  expect_no_output "$O" "$name.out"
}

# run_tampered: makes every planned file, then checks that each is refused.
run_tampered() {
  python3 "$WORK/surgery.py" <"$WORK/jobs" || fail "surgery failed"
  local name words
  for name in "${CASES[@]}"; do
    mapfile -t words <<<"${WORDS[$name]}"
    refused "$name" "${words[@]}"
  done
  CASES=()
  : >"$WORK/jobs"
}

# ---- the untouched blobs open ------------------------------------------------
for b in raw z pipe; do
  expect_ok renc decrypt "$D/$b.renc" "$D/$b.ok"
done
expect_same "raw blob opens" "$D/plain" "$D/raw.ok"
expect_same "compressed blob opens" "$D/text" "$D/z.ok"
expect_same "stdin-mode blob opens" "$D/plain" "$D/pipe.ok"

# The raw layout is where the format says: records back to back after the
# header, every one but the last 4 + S + 16 bytes.
printf '%s\n' "$D/raw.renc - $HL_RAW layout" "$D/z.renc - $HL_Z layout" |
  python3 "$WORK/surgery.py" >"$WORK/layouts"
{ read -r RAW_LAYOUT; read -r -a ZL; } <"$WORK/layouts"
check "raw records sit at header_len + i * (S + 20)" test "$RAW_LAYOUT" = \
  "$HL_RAW 4116 $((HL_RAW + 4116)) 4116 $((HL_RAW + 2 * 4116)) 4116 $((HL_RAW + 3 * 4116)) 2068"
check "compressed blob: 4 records, the full ones smaller than raw" \
  test "${#ZL[@]}" -eq 8 -a "${ZL[1]:-0}" -lt 4116 -a "${ZL[3]:-0}" -lt 4116 -a "${ZL[5]:-0}" -lt 4116

# ---- raw multi-record blob -----------------------------------------------------
tamper r-ct raw.renc "$HL_RAW" recflip 1 ct 100 3 -- "record 1" "$AUTH"
tamper r-ct-last raw.renc "$HL_RAW" recflip 3 ct -1 0 -- "record 3" "$AUTH"
tamper r-tag raw.renc "$HL_RAW" recflip 2 tag 0 7 -- "record 2" "$AUTH"
tamper r-tag-end raw.renc "$HL_RAW" recflip 0 tag -1 0 -- "record 0" "$AUTH"
# Length words: over S, the compression bit without the flag, a length that
# runs past the end of the file, and one that shrinks the record to nothing.
tamper r-word-big raw.renc "$HL_RAW" recflip 0 word 2 3 -- "record 0" "malformed record"
tamper r-word-bit31 raw.renc "$HL_RAW" recflip 1 word 0 7 -- "record 1" "malformed record"
tamper r-word-long raw.renc "$HL_RAW" recflip 3 word 3 0 -- "record 3" "truncated"
tamper r-word-zero raw.renc "$HL_RAW" recflip 2 word 2 4 -- "record 2" "$AUTH"
# Order and count of records.
tamper r-swap raw.renc "$HL_RAW" swap 0 1 -- "record 0" "$AUTH"
tamper r-swap-later raw.renc "$HL_RAW" swap 1 2 -- "record 1" "$AUTH"
tamper r-drop-last raw.renc "$HL_RAW" drop -1 -- "truncated"
tamper r-drop-mid raw.renc "$HL_RAW" drop 1 -- "record 1" "$AUTH"
tamper r-dup raw.renc "$HL_RAW" dup 1 -- "trailing"
tamper r-dup-last raw.renc "$HL_RAW" dup 3 -- "trailing"
tamper r-garbage1 raw.renc "$HL_RAW" append 1 -- "trailing"
tamper r-garbage4 raw.renc "$HL_RAW" append 4 -- "trailing"
tamper r-garbage raw.renc "$HL_RAW" append 1000 -- "trailing"
# Truncation: mid-record, inside a word, one byte short, mid-header, inside
# the first 16 bytes, and right after the header.
tamper r-cut-mid raw.renc "$HL_RAW" cutrec 2 2000 -- "record 2" "truncated"
tamper r-cut-word raw.renc "$HL_RAW" cutrec 3 2 -- "record 3" "truncated"
tamper r-cut-tag raw.renc "$HL_RAW" cutrec 3 2067 -- "record 3" "truncated"
tamper r-cut-hdr raw.renc "$HL_RAW" truncate $((HL_RAW / 2)) -- "truncated"
tamper r-cut-hdr16 raw.renc "$HL_RAW" truncate 10 -- "truncated"
tamper r-hdr-only raw.renc "$HL_RAW" truncate "$HL_RAW" -- "truncated"
# The header: covered bytes (salt, plaintext_len, seg_shift, the context's
# created value), the tag itself, the padding, the flags, magic, version.
tamper r-h-salt raw.renc "$HL_RAW" flip 20 0 -- "header authentication failed"
tamper r-h-len raw.renc "$HL_RAW" flip 15 0 -- "header authentication failed"
tamper r-h-shift raw.renc "$HL_RAW" flip 5 0 -- "header authentication failed"
tamper r-h-ctx raw.renc "$HL_RAW" flip 70 1 -- "header authentication failed"
tamper r-h-tag raw.renc "$HL_RAW" flip $((HL_RAW - 1)) 0 -- "header authentication failed"
tamper r-h-pad raw.renc "$HL_RAW" flip $((HL_RAW - 40)) 0 -- "padding"
tamper r-h-flags raw.renc "$HL_RAW" flip 55 2 -- "flag"
tamper r-h-magic raw.renc "$HL_RAW" flip 0 0 -- "not a RENC file"
tamper r-h-version raw.renc "$HL_RAW" flip 4 1 -- "version"
run_tampered

# A flipped bit in the wrapped DEK (the slot's last bytes sit just before the
# 773 bytes of padding and the tag): the unwrap fails.  A tampered slot and a
# key with other material look alike to a reader, so this is reported as a
# key failure (exit 1) naming the slot's key, not as bad input; either way it
# is refused and leaves nothing.
echo "$D/raw.renc $D/r-h-wrap $HL_RAW flip $((HL_RAW - 32 - 773 - 10)) 0" |
  python3 "$WORK/surgery.py"
run renc decrypt "$D/r-h-wrap" "$O/r-h-wrap.out"
check "flipped wrapped DEK is refused (exit 1 or 2, was $RC)" test "$RC" -eq 1 -o "$RC" -eq 2
expect_msg "$D/r-h-wrap" "did not unwrap" "local:k/1"
expect_no_output "$O" r-h-wrap.out

# ---- compressed blob -------------------------------------------------------------
tamper z-ct z.renc "$HL_Z" recflip 1 ct 5 0 -- "record 1" "$AUTH"
tamper z-tag z.renc "$HL_Z" recflip 0 tag 3 2 -- "record 0" "$AUTH"
tamper z-word-bit31 z.renc "$HL_Z" recflip 2 word 0 7 -- "record 2" "$AUTH"
tamper z-word-len z.renc "$HL_Z" recflip 0 word 3 0 -- "record 0"
tamper z-swap z.renc "$HL_Z" swap 0 1 -- "record 0" "$AUTH"
tamper z-drop-last z.renc "$HL_Z" drop -1 -- "truncated"
tamper z-dup z.renc "$HL_Z" dup 0 -- "trailing"
tamper z-garbage z.renc "$HL_Z" append 7 -- "trailing"
tamper z-cut-mid z.renc "$HL_Z" cutrec 1 30 -- "record 1" "truncated"
run_tampered

# ---- stdin-mode blob (plaintext_len unknown) ------------------------------------
# The last record is the one followed by end of file, and must open with
# last = 1: dropping it leaves a last record that was sealed with last = 0.
tamper p-drop-last pipe.renc "$HL_PIPE" drop -1 -- "record 2" "$AUTH"
tamper p-drop-two pipe.renc "$HL_PIPE" cutrec 2 0 -- "record 1" "$AUTH"
tamper p-dup pipe.renc "$HL_PIPE" dup 0 -- "record 3" "$AUTH"
tamper p-garbage pipe.renc "$HL_PIPE" append 3 -- "record 3"
tamper p-garbage-big pipe.renc "$HL_PIPE" append 500 -- "record 3"
tamper p-ct pipe.renc "$HL_PIPE" recflip 0 ct 0 0 -- "record 0" "$AUTH"
tamper p-swap pipe.renc "$HL_PIPE" swap 0 2 -- "record 0" "$AUTH"
tamper p-word pipe.renc "$HL_PIPE" recflip 1 word 2 3 -- "record 1" "malformed record"
tamper p-cut-mid pipe.renc "$HL_PIPE" cutrec 3 100 -- "record 3" "truncated"
tamper p-hdr-only pipe.renc "$HL_PIPE" truncate "$HL_PIPE" -- "truncated"
tamper p-h-len pipe.renc "$HL_PIPE" flip 15 0 -- "header authentication failed"
run_tampered

# ---- not a blob at all -------------------------------------------------------------
mkdata "$D/random-file" 5000 random
refused random-file "not a RENC file"
printf 'hello, world\n' >"$D/text-file"
refused text-file "not a RENC file"
: >"$D/empty-file"
refused empty-file "not a RENC file"
printf 'REN' >"$D/three-bytes"
refused three-bytes "not a RENC file"
mkdir "$D/a-dir"
refused a-dir "directory"
refused no-such-file "no such file"

# ---- an existing output stays as it was ---------------------------------------------
printf 'keep me\n' >"$O/existing"
expect_exit 2 renc decrypt "$D/r-cut-mid" "$O/existing"
check "a failed decrypt leaves an existing output untouched" \
  test "$(<"$O/existing")" = "keep me"
check "and no temporary beside it" no_temporaries "$O"
rm -f "$O/existing"

# ---- nothing at all was left in the output folder -----------------------------------
check "output folder is empty after every refusal" test -z "$(ls -A "$O")"

finish
