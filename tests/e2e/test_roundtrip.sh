#!/usr/bin/env bash
# tests/e2e/test_roundtrip.sh — encrypt then decrypt with the real binary and
# compare, across plaintext sizes at and around the segment boundaries, both
# KEK types, with and without compression, 4K and 1M segments, from a file
# and from a pipe (length unknown), with several key slots; and the header
# `inspect` reports for each.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

D=$WORK/data
mkdir -p "$D"
KiB=1024
MiB=$((1024 * 1024))

expect_ok renc keys create aes --type aes256
expect_ok renc keys create rsa --type rsa3072

# Plaintexts: random (incompressible) and text (compressible) of each size.
SIZES=(0 1 4095 4096 4097 $((MiB - 1)) $MiB $((MiB + 1)) $((5 * MiB)))
declare -A SIZE_OF
for n in "${SIZES[@]}"; do
  mkdata "$D/random.$n" "$n" random
  mkdata "$D/text.$n" "$n" text
  SIZE_OF[$D/random.$n]=$n
  SIZE_OF[$D/text.$n]=$n
done

# header_bytes BLOB: reads the fixed fields straight from the file (not
# through inspect: an independent look at FORMAT.md §2's layout) into
# H_MAGIC ("RENC" as 82 69 78 67), H_VERSION, H_SHIFT, H_LEN (header_len),
# H_PLEN (plaintext_len, or "unknown" for 2^64-1) and H_FLAGS.
header_bytes() {
  local -a b
  read -r -a b < <(od -An -v -tu1 -N56 -- "$1" | tr -s ' \n' '  ')
  H_MAGIC="${b[0]} ${b[1]} ${b[2]} ${b[3]}"
  H_VERSION=${b[4]} H_SHIFT=${b[5]} H_LEN=$((b[6] << 8 | b[7])) H_FLAGS=${b[55]}
  local i v=0 all_ff=1
  for i in 8 9 10 11 12 13 14 15; do
    v=$((v << 8 | b[i]))
    [ "${b[i]}" -eq 255 ] || all_ff=0
  done
  H_PLEN=$v
  [ "$all_ff" -eq 1 ] && H_PLEN=unknown
  return 0
}

# roundtrip DESC PLAIN SEGSIZE ENC_ARGS...: encrypts PLAIN (a file) with
# ENC_ARGS, checks the header's fixed fields and, for raw records, the exact
# layout, then decrypts and compares.  Five processes per call (the matrix
# below runs it some fifty times, and under ASan each start of the binary is
# slow).
roundtrip() {
  local desc=$1 plain=$2 seg=$3
  shift 3
  local blob=$D/blob out=$D/out n=${SIZE_OF[$plain]:-}
  [ -n "$n" ] || n=$(file_size "$plain")
  local segs=$(((n + seg - 1) / seg)) shift_=0
  [ "$segs" -eq 0 ] && segs=1
  while [ $((1 << shift_)) -lt "$seg" ]; do shift_=$((shift_ + 1)); done
  expect_ok renc encrypt --env test --segment-size "$seg" "$@" "$plain" "$blob" || return
  expect_out "$n bytes in $segs records"
  local want_flags=0
  case " $* " in *" --compress"*) want_flags=1 ;; esac
  header_bytes "$blob"
  check "$desc: header magic, version, seg_shift, plaintext_len, flags" \
    test "$H_MAGIC $H_VERSION $H_SHIFT $H_PLEN $H_FLAGS" = "82 69 78 67 1 $shift_ $n $want_flags"
  local size
  size=$(file_size "$blob")
  if [ "$want_flags" = 0 ]; then
    # Raw records: the header, then each segment plus word and tag.
    check "$desc: blob is header + plaintext + 20 bytes per record" \
      test "$size" -eq $((H_LEN + n + 20 * segs))
  elif [ "$n" -ge "$seg" ] && [[ $plain == *text.* ]]; then
    check "$desc: compressible text got smaller" test "$size" -lt "$n"
  fi
  if expect_ok renc decrypt "$blob" "$out"; then
    expect_out "$n bytes in $segs records verified"
    expect_same "$desc: round trip" "$plain" "$out"
  fi
  check "$desc: no temporaries" no_temporaries "$D"
}

# ---- sizes x compression x segment size, for each KEK type -----------------
# 4K segments: every size.  1M segments: the sizes around its own boundary
# (the 4K ones are all one short segment there, the same path as size 1).
# The KEK only wraps the DEK in the header, so the RSA key runs fewer: empty,
# one segment exactly and one byte over, and many segments.
for n in "${SIZES[@]}"; do
  roundtrip "aes/4K/raw/$n" "$D/random.$n" 4096 --key local:aes
  roundtrip "aes/4K/zstd/$n" "$D/text.$n" 4096 --key local:aes --compress
done
for n in 0 $((MiB - 1)) $MiB $((MiB + 1)) $((5 * MiB)); do
  roundtrip "aes/1M/raw/$n" "$D/random.$n" "$MiB" --key local:aes
  roundtrip "aes/1M/zstd/$n" "$D/text.$n" "$MiB" --key local:aes --compress
done
for n in 0 4096 4097 $((MiB + 1)); do
  roundtrip "rsa/4K/raw/$n" "$D/random.$n" 4096 --key local:rsa
done
roundtrip "rsa/4K/zstd/4097" "$D/text.4097" 4096 --key local:rsa --compress
roundtrip "rsa/1M/raw/$MiB" "$D/random.$MiB" "$MiB" --key local:rsa
roundtrip "rsa/1M/zstd/$((MiB + 1))" "$D/text.$((MiB + 1))" "$MiB" --key local:rsa --compress
# Compression asked for, but nothing compresses: stored raw, still opens.
roundtrip "aes/4K/zstd-random" "$D/random.$((MiB + 1))" 4096 --key local:aes --compress
roundtrip "rsa/1M/zstd-random" "$D/random.$((MiB + 1))" "$MiB" --key local:rsa --compress

# A compressed random blob stores every record raw: its size is exactly the
# uncompressed layout's.
expect_ok renc encrypt --env test --key local:aes --compress --segment-size 4K \
  "$D/random.4097" "$D/zr.renc"
check "incompressible segments are stored raw under --compress" \
  test "$(file_size "$D/zr.renc")" -eq $(($(inspect_field "$D/zr.renc" .header_len) + 4097 + 40))

# The largest segment size, and the compression levels at both ends.
roundtrip "aes/16M/raw" "$D/random.$((5 * MiB))" $((16 * MiB)) --key local:aes
roundtrip "aes/4K/level1" "$D/text.$((MiB + 1))" 4096 --key local:aes --compress=1
roundtrip "aes/4K/level19" "$D/text.4097" 4096 --key local:aes --compress=19

# ---- one large blob (64 MiB) -------------------------------------------------
BIG=$D/big
mkdata "$BIG" $((64 * MiB)) random
roundtrip "aes/1M/raw/64MiB" "$BIG" "$MiB" --key local:aes
expect_mode 600 "$D/out"   # decrypted plaintext is private
rm -f "$BIG" "$D/blob" "$D/out"

# ---- standard input: length unknown ------------------------------------------
# enc_pipe IN OUT ARGS...: encrypt from a pipe.
enc_pipe() {
  local in=$1 out=$2
  shift 2
  cat "$in" | renc encrypt --env test "$@" - "$out"
}

stdin_roundtrip() {
  local desc=$1 plain=$2 seg=$3
  shift 3
  local blob=$D/sblob out=$D/sout n
  n=$(file_size "$plain")
  expect_ok enc_pipe "$plain" "$blob" --segment-size "$seg" "$@" || return
  # plaintext_len on disk is 2^64-1 ("unknown"); inspect's view of it is
  # checked once, below.
  header_bytes "$blob"
  check "$desc: plaintext_len is 2^64-1 on disk" test "$H_PLEN" = unknown
  case " $* " in
    *" --compress"*) ;;
    *)
      # The last record is the one followed by end of file; a writer may or
      # may not add an empty one after a last full segment.
      local segs=$(((n + seg - 1) / seg)) size
      [ "$segs" -eq 0 ] && segs=1
      size=$(file_size "$blob")
      check "$desc: layout is header + plaintext + 20 per record" \
        test "$size" -eq $((H_LEN + n + 20 * segs)) -o "$size" -eq $((H_LEN + n + 20 * (segs + 1)))
      ;;
  esac
  if expect_ok renc decrypt "$blob" "$out"; then
    expect_out "$n bytes"
    expect_same "$desc: round trip" "$plain" "$out"
  fi
}

mkdata "$D/random.3S" $((3 * 4096)) random
mkdata "$D/random.3S1" $((3 * 4096 + 1)) random
for n in 0 1 4096 4097; do
  stdin_roundtrip "stdin/4K/$n" "$D/random.$n" 4096 --key local:aes
done
stdin_roundtrip "stdin/4K/3S (exact multiple)" "$D/random.3S" 4096 --key local:aes
stdin_roundtrip "stdin/4K/3S+1" "$D/random.3S1" 4096 --key local:rsa
stdin_roundtrip "stdin/1M/1MiB (exact multiple)" "$D/random.$MiB" "$MiB" --key local:aes
stdin_roundtrip "stdin/1M/5MiB (exact multiple)" "$D/random.$((5 * MiB))" "$MiB" --key local:aes
stdin_roundtrip "stdin/4K/zstd/5MiB" "$D/text.$((5 * MiB))" 4096 --key local:aes --compress
stdin_roundtrip "stdin/4K/zstd/4096" "$D/text.4096" 4096 --key local:rsa --compress
# What inspect makes of a blob sealed from a pipe.
check "stdin: inspect says plaintext_len null, no segments count, no name" \
  test "$(inspect_field "$D/sblob" '"\(.plaintext_len) \(has("segments")) \(.context | has("name")) \(.flags.compressed)"')" \
       = "null false false true"

# ---- several key slots -------------------------------------------------------
P=$D/random.4097
expect_ok renc encrypt --env prod --key local:aes --key local:rsa --segment-size 4K "$P" "$D/two.renc"
# Two slots, versioned refs in --key order, A256KWP (40-byte wrap) then
# RSA-OAEP-256 (a 3072-bit modulus: 384 bytes).
check "two slots: refs, algs, wrapped lengths" \
  test "$(inspect_field "$D/two.renc" '[.slots[] | "\(.ref) \(.alg) \(.alg_name) \(.wrapped_len)"] | join(", ")')" \
       = "local:aes/1 1 A256KWP 40, local:rsa/1 2 RSA-OAEP-256 384"

expect_ok renc decrypt "$D/two.renc" "$D/two.out"
expect_out "(key local:aes/1)"
expect_same "two slots: opens with the first" "$P" "$D/two.out"
rm -f "$D/two.out"

expect_ok renc keys revoke aes
expect_ok renc decrypt "$D/two.renc" "$D/two.out"
expect_out "(key local:rsa/1)"
expect_same "two slots: first revoked, opens with the second" "$P" "$D/two.out"
rm -f "$D/two.out"
expect_ok renc keys restore aes

expect_ok renc keys disable rsa/1
expect_ok renc decrypt "$D/two.renc" "$D/two.out"
expect_same "two slots: second disabled, opens with the first" "$P" "$D/two.out"
rm -f "$D/two.out"
expect_ok renc keys enable rsa/1

expect_ok renc keys revoke aes
expect_ok renc keys revoke rsa
expect_exit 1 renc decrypt "$D/two.renc" "$D/two.out"
expect_msg "$D/two.renc" "revoked"
expect_no_output "$D" two.out
expect_ok renc keys restore aes
expect_ok renc keys restore rsa

# Rotation then a versioned and an unversioned ref of the same key.
expect_ok renc keys rotate aes
expect_ok renc encrypt --env prod --key local:aes/1 --key local:aes "$P" "$D/mig.renc"
check "versioned and current refs of one key" \
  test "$(inspect_field "$D/mig.renc" '[.slots[].ref] | join(" ")')" = "local:aes/1 local:aes/2"
expect_ok renc keys revoke aes/1
expect_ok renc decrypt "$D/mig.renc" "$D/mig.out"
expect_out "(key local:aes/2)"
expect_same "migration window: opens under the new version" "$P" "$D/mig.out"
expect_ok renc keys restore aes/1

# Eight slots is the limit.
args=()
for i in 1 2 3 4 5 6 7 8; do args+=(--key local:aes/1); done
expect_ok renc encrypt --env e "${args[@]}" "$P" "$D/eight.renc"
check "eight slots" test "$(inspect_field "$D/eight.renc" '.slots | length')" = 8
expect_exit 2 renc encrypt --env e "${args[@]}" --key local:aes "$P" "$D/nine.renc"
expect_no_output "$D" nine.renc

# ---- inspect's other fields -------------------------------------------------
expect_ok renc encrypt --env staging --kind backup --name db.bak --source-env prod \
  --key local:aes --segment-size 64K "$P" "$D/bk.renc"
expect_ok renc inspect "$D/bk.renc"
cp "$WORK/out" "$D/bk.json"
check "inspect: version, seg_shift, context, padding, salt and prefix lengths" \
  test "$(jq -r '[.version, .seg_shift, .context.env, .context.kind, .context.name,
                 .context["source-env"], .padding_bytes, (.salt | length),
                 (.nonce_prefix | length)] | join(" ")' "$D/bk.json")" \
       = "1 16 staging backup db.bak prod 773 64 14"
check "inspect: created is RFC 3339 UTC" \
  test "$(jq -r '.context.created | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")' \
          "$D/bk.json")" = true
check "inspect: file name defaults to the input's" \
  test "$(inspect_field "$D/two.renc" .context.name)" = "random.4097"
expect_ok renc encrypt --env e --key local:aes --header-room 0 "$P" "$D/tight.renc"
check "--header-room 0: no padding" test "$(inspect_field "$D/tight.renc" .padding_bytes)" = 0
expect_ok renc decrypt "$D/tight.renc" "$D/tight.out"
expect_same "no padding: round trip" "$P" "$D/tight.out"
# Two blobs of the same plaintext share neither salt nor nonce prefix.
expect_ok renc encrypt --env e --key local:aes "$P" "$D/again.renc"
check "salt and nonce prefix are fresh per blob" \
  test "$(inspect_field "$D/tight.renc" '.salt + .nonce_prefix')" != \
       "$(inspect_field "$D/again.renc" '.salt + .nonce_prefix')"

# ---- usage errors -----------------------------------------------------------
expect_exit 2 renc encrypt --env e --key local:aes --segment-size 3000 "$P" "$D/u.renc"
expect_msg "segment-size"
expect_exit 2 renc encrypt --env e --key local:aes --segment-size 32M "$P" "$D/u.renc"
expect_exit 2 renc encrypt --env e --key local:aes --compress=20 "$P" "$D/u.renc"
expect_exit 2 renc encrypt --key local:aes "$P" "$D/u.renc"
expect_exit 2 renc encrypt --env e "$P" "$D/u.renc"
expect_exit 2 renc encrypt --env e --key 'nonsense' "$P" "$D/u.renc"
expect_exit 2 renc encrypt --env e --key local:aes "$D/missing" "$D/u.renc"
expect_msg "$D/missing"
expect_exit 1 renc encrypt --env e --key local:nosuch "$P" "$D/u.renc"
expect_msg "not found"
expect_no_output "$D" u.renc
# A failed encrypt leaves an existing OUT as it was, and no temporary.
printf 'old blob\n' >"$D/kept.renc"
expect_exit 1 renc encrypt --env e --key local:nosuch "$P" "$D/kept.renc"
check "failed encrypt leaves OUT untouched" test "$(<"$D/kept.renc")" = "old blob"
check "failed encrypt leaves no temporary" no_temporaries "$D"
expect_exit 2 renc decrypt "$D/missing.renc" "$D/u.out"
expect_no_output "$D" u.out

finish
