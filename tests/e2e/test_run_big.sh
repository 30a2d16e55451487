#!/usr/bin/env bash
# tests/e2e/test_run_big.sh — `run` and `verify` on big blobs: one of 256 MiB
# (1 MiB segments) and one of 64 MiB with 4K segments (16384 records, many
# per chunk), under small buffer pools (--memory 20M) and 1, 2 and 4 threads,
# with and without --direct; a corrupted last record; SIGINT in the middle of a
# run of several big blobs (each blob stays wholly old or wholly new).
# Plaintexts are checked with renc_check.py when python3-cryptography is
# there, else with the tool's decrypt.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MiB=$((1024 * 1024))
T0=$SECONDS
RENC_BIN=$(realpath "$RENC_BIN")
cd "$WORK" || exit 2
sanitizer_logs

section() {
  echo "== $* ($((SECONDS - T0)) s)"
}

expect_ok renc keys create old --type aes256
expect_ok renc keys create new --type aes256
expect_ok renc keys create newrsa --type rsa3072

section "corpus"
S=$WORK/src
PL=$WORK/plain
mkdir -p "$S/deep/er" "$PL"
mkdata "$PL/p256" $((256 * MiB))
mkdata "$PL/t64" $((64 * MiB + 3)) text
expect_ok renc encrypt --env big --key local:old "$PL/p256" "$S/b256.renc"
expect_ok_stdin() { expect_exit_stdin 0 "$@"; }
expect_ok_stdin "$PL/t64" renc encrypt --env big --key local:old --compress --segment-size 4K - "$S/deep/er/t64.renc"
SHA256=$(sha256sum <"$PL/p256" | cut -d' ' -f1)
SHA64=$(sha256sum <"$PL/t64" | cut -d' ' -f1)
rm -f "$PL/p256" "$PL/t64"
printf '%s\t%s\n' b256.renc "$SHA256" deep/er/t64.renc "$SHA64" >"$WORK/expect.tsv"
cut -f1 "$WORK/expect.tsv" >"$WORK/blobs.lst"
tree_hashes "$S" >"$WORK/src.sha"

# expect_big DESC ROOT SLOTS: both blobs open to their plaintext under SLOTS.
expect_big() {
  local desc=$1 root=$2 slots=$3 got
  got=$(blob_facts "$root" "$WORK/blobs.lst" | cut -f1-4 | LC_ALL=C sort)
  local want
  want=$(awk -F'\t' -v s="$slots" '{ print $1 "\tok\t" $2 "\t" s }' "$WORK/expect.tsv" | LC_ALL=C sort)
  if [ "$got" = "$want" ]; then
    pass "$desc: the big blobs open to their plaintext under $slots"
  else
    fail "$desc: big blobs wrong"
    diff <(echo "$want") <(echo "$got") | sed 's/^/    /' >&2
  fi
}

section "rekey in place, --memory 20M, 2 threads"
A=$WORK/a
cp -a "$S" "$A"
expect_ok renc run --mode rekey --to local:new --memory 20M --threads 2 --progress=none \
  --report "$WORK/a.json" "$A"
check "report: 2 done, peak buffers <= 20 MiB" \
  test "$(jq -r '"\(.blobs.done) \(.peak_buffer_bytes <= 20 * 1048576)"' "$WORK/a.json")" = "2 true"
expect_no_temporaries "rekey in place" "$A"
expect_big "rekey in place" "$A" local:new/1
tree_hashes "$A" >"$WORK/a.sha"
expect_ok renc run --mode rekey --to local:new --progress=none "$A"
expect_out "0 blobs re-encrypted, 2 skipped"
expect_unchanged() {
  if tree_hashes "$2" | cmp -s - "$3"; then pass "$1: no file changed"; else fail "$1: files changed"; fi
}
expect_unchanged "rerun" "$A" "$WORK/a.sha"
expect_ok renc verify --threads 1 --progress=none "$A"
expect_out "2 blobs verified"

section "rewrap --out to RSA, 1 thread"
expect_ok renc run --to local:newrsa --threads 1 --out "$WORK/o1" --progress=none "$S"
expect_unchanged "rewrap --out: the source" "$S" "$WORK/src.sha"
expect_no_temporaries "rewrap --out" "$S" "$WORK/o1"
expect_big "rewrap --out" "$WORK/o1" local:newrsa/1
rm -rf "$WORK/o1"

section "rekey --out, 4 threads, --memory 64M"
expect_ok renc run --mode rekey --to local:new --threads 4 --memory 64M --out "$WORK/o2" \
  --progress=json --report "$WORK/o2.json" "$S"
check "report: peak buffers <= 64 MiB" test "$(jq -r '.peak_buffer_bytes <= 64 * 1048576' "$WORK/o2.json")" = true
check "--progress=json: every progress line is JSON" \
  test "$(grep '^{' "$WORK/out" | jq -s 'length > 0 and all(.type == "progress")')" = true
expect_unchanged "rekey --out: the source" "$S" "$WORK/src.sha"
expect_no_temporaries "rekey --out" "$S" "$WORK/o2"
expect_big "rekey --out" "$WORK/o2" local:new/1
rm -rf "$WORK/o2"

section "--direct: rekey in place and verify"
Dd=$WORK/d
cp -a "$S" "$Dd"
expect_ok renc run --direct --mode rekey --to local:new --threads 2 --memory 24M --progress=none "$Dd"
expect_out "2 blobs re-encrypted"
expect_no_temporaries "rekey --direct" "$Dd"
expect_big "rekey --direct" "$Dd" local:new/1
expect_ok renc verify --direct --progress=none "$Dd"
expect_out "2 blobs verified"
rm -rf "$Dd"

section "a corrupted last record"
X=$WORK/x
cp -a "$S" "$X"
size=$(file_size "$X/b256.renc")
flip_byte "$X/b256.renc" $((size - 100))
sha_x=$(sha256sum <"$X/b256.renc")
expect_exit 1 renc run --mode rekey --to local:new --memory 20M --progress=none --report "$WORK/x.json" "$X"
expect_msg "$X/b256.renc" "authentication"
check "corrupted big blob unchanged" test "$(sha256sum <"$X/b256.renc")" = "$sha_x"
check "report: 1 done, 1 failed" \
  test "$(jq -r '"\(.blobs.done) \(.blobs.failed) \(.failures[0].path)"' "$WORK/x.json")" = "1 1 $X/b256.renc"
expect_no_temporaries "corrupted big blob" "$X"
expect_exit 1 renc verify --progress=none "$X"
expect_msg "$X/b256.renc" "authentication"
rm -rf "$X"

section "SIGINT during a run of big blobs"
I=$WORK/i
mkdir -p "$I"
mkdata "$PL/p24" $((24 * MiB))
SHA24=$(sha256sum <"$PL/p24" | cut -d' ' -f1)
expect_ok renc encrypt --env big --key local:old "$PL/p24" "$I/b00.renc"
: >"$WORK/i.lst"
for k in $(seq -w 0 11); do
  [ "$k" = 00 ] || cp "$I/b00.renc" "$I/b$k.renc"
  echo "b$k.renc" >>"$WORK/i.lst"
done
"$RENC_BIN" run --state "$STATE" --mode rekey --to local:new --threads 1 --memory 20M \
  --progress=none --report "$WORK/i.json" "$I" >"$WORK/out" 2>"$WORK/err" &
pid=$!
# Interrupt as soon as the first blob is being written.
for ((k = 0; k < 500; k++)); do
  compgen -G "$I/.*.renc-tmp.*" >/dev/null && break
  sleep 0.01
done
kill -INT $pid
wait $pid
RC=$?
if [ "$RC" -eq 0 ]; then
  echo "NOTE: the run finished before SIGINT came"
  pass "SIGINT: exit 0 (finished first)"
elif [ "$RC" -eq 130 ]; then
  pass "SIGINT: exit 130"
else
  fail "SIGINT: exit $RC, wanted 130 (or 0 when it finished first)"
  sed 's/^/    /' "$WORK/err" >&2
fi
[ "$RC" -eq 130 ] && expect_msg "interrupted"
expect_no_temporaries "SIGINT" "$I"
got=$(blob_facts "$I" "$WORK/i.lst" | awk -F'\t' -v sha="$SHA24" '
  $2 != "ok" || $3 != sha { bad++; next } { n[$4]++ }
  END { printf "%d bad, %d new, %d old", bad, n["local:new/1"], n["local:old/1"] }')
check "SIGINT: every blob wholly old or wholly new ($got)" \
  test "${got%%,*}" = "0 bad"
if [ "$RC" -eq 130 ]; then
  check "SIGINT: the report's done count matches the blobs under the target" \
    test "$(jq -r .blobs.done "$WORK/i.json")" = "$(echo "$got" | sed -E 's/.*, ([0-9]+) new.*/\1/')"
fi
expect_ok renc run --mode rekey --to local:new --progress=none "$I"
expect_ok renc verify --progress=none "$I"
expect_out "12 blobs verified"

expect_no_sanitizer_reports
section "done"
finish
