#!/usr/bin/env bash
# tests/e2e/test_secrets.sh — secrets hygiene: key bytes never leave the
# keyring's key files.
#
# A keyring with AES keys (one rotated) and an RSA key; blobs sealed under
# each (one from stdin, compressed ones, one with two slots); `run` rewrap in
# place, `run` rekey into a mirror, `run` rekey onto the RSA key with a shared
# DEK, `verify`, `inspect`, `plan`, `decrypt`, `keys list`, `status`, and
# failures (a tampered blob, a disabled and a revoked key), environments
# (catalog, put, backup, restore and copy with their checks), every command's
# standard output and error kept.  Then every file under the scratch folder
# (state folder, keyring state files, journals, reports, outputs, blobs,
# plaintexts; all but the keyring's VERSION.key / VERSION.pem files) is
# searched by secret_scan.py for
#   - every KEK: the raw AES keys, and the RSA private integers;
#   - every DEK any blob had at any stage (unwrapped from snapshots with the
#     keyring's material and proven by the header tag), and its PRK, K_data
#     and K_hdr — when python3 cryptography is there, else said and skipped;
# as raw bytes, lower/upper hex and base64 (standard and URL-safe, any
# alignment, wrapped or not).  A self-check first plants known leaks (made
# here with od, base64, tr and openssl, not by the scanner) and requires the
# scanner to find every one, so the search can fail.  And modes: keyring
# folders 0700, key and state files 0600, reports 0600, journals 0600.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KR=$STATE/keyring
D=$WORK/data        # the tree run in place
M=$WORK/mirror      # run --out
P=$WORK/plain
SNAP=$WORK/snap     # blobs as they were before each run (their DEKs)
OUT=$WORK/outputs   # every command's stdout and stderr
mkdir -p "$D/sub" "$P" "$SNAP" "$OUT"
SCAN=$RENC_TESTS_DIR/e2e/secret_scan.py

if ! command -v python3 >/dev/null 2>&1; then
  fail "python3 is needed for secret_scan.py (scripts/bootstrap.sh installs it)"
  finish
fi

# keep NAME: the last run's stdout and stderr, kept for the scan.
keep() {
  cp "$WORK/out" "$OUT/$1.out"
  cp "$WORK/err" "$OUT/$1.err"
}

# step NAME CMD...: expect_ok CMD, output kept as NAME.
step() {
  local name=$1
  shift
  expect_ok "$@"
  keep "$name"
}

# step_fails NAME WORDS CMD...: CMD exits non-zero and says WORDS (one
# string); output kept as NAME.
step_fails() {
  local name=$1 words=$2
  shift 2
  run "$@"
  keep "$name"
  check "$name fails (exit $RC)" test "$RC" -ne 0
  expect_msg "$words"
}

snapshot() {
  mkdir -p "$SNAP/$1"
  cp -a "$2/." "$SNAP/$1/"
}

# ---- keys and blobs --------------------------------------------------------
step keys-create-aes renc keys create aes --type aes256
step keys-create-rsa renc keys create rsa --type rsa2048
step keys-create-cmk renc keys create cmk
step keys-rotate-aes renc keys rotate aes

mkdata "$P/small" 1000 random
mkdata "$P/text" 40000 text
mkdata "$P/multi" 50000 random
step enc-small renc encrypt --env prod --key local:aes "$P/small" "$D/small.renc"
step enc-text renc encrypt --env prod --key local:rsa --compress --segment-size 4K \
  "$P/text" "$D/sub/text.renc"
step enc-multi renc encrypt --env prod --key local:aes/1 --key local:rsa --segment-size 4K \
  "$P/multi" "$D/sub/multi.renc"
run_stdin "$P/text" renc encrypt --env prod --kind backup --key local:aes - "$D/stdin.renc"
keep enc-stdin
check "encrypt from stdin" test "$RC" -eq 0
step inspect-multi renc inspect "$D/sub/multi.renc"
step inspect-stdin renc inspect "$D/stdin.renc"
step plan renc plan "$D"
snapshot 0-sealed "$D"

# ---- runs --------------------------------------------------------------------
step run-rewrap renc run --to local:cmk --mode rewrap --progress=json \
  --report "$WORK/report-rewrap.json" "$D"
snapshot 1-rewrapped "$D"
step keys-rotate-cmk renc keys rotate cmk
step run-rekey-out renc run --to local:cmk --mode rekey --out "$M" --progress=json \
  --report "$WORK/report-rekey.json" "$D"
snapshot 2-mirror "$M"
step run-rekey-rsa renc run --to local:rsa --mode rekey --share-dek 2 --progress=json \
  --report "$WORK/report-rekey-rsa.json" "$M"
step run-again renc run --to local:rsa --progress=json --report "$WORK/report-again.json" "$M"
step verify renc verify --progress=json --report "$WORK/report-verify.json" "$D" "$M"
step plan-after renc plan --json "$M"
step keys-list renc keys list
step keys-list-json renc keys list --json
step decrypt-small renc decrypt "$M/small.renc" "$WORK/small.out"
expect_same "the rekeyed mirror opens to the plaintext" "$P/small" "$WORK/small.out"
step decrypt-multi renc decrypt "$D/sub/multi.renc" "$WORK/multi.out"
expect_same "the rewrapped tree opens to the plaintext" "$P/multi" "$WORK/multi.out"
# status: whatever it says about the journals (or its usage), it is output
# too, so it is scanned; its exit status is not this test's business.
run renc status
keep status

# ---- environments: catalog, put, backup, restore and copy --------------------
step env-create-a renc env create env-a
step env-create-b renc env create env-b
step env-policy-a renc env set-policy env-a --cmk local:cmk
step env-policy-b renc env set-policy env-b --cmk local:cmk
step put renc put --env env-a "$P"
step backup renc backup create --env env-a --name b.renc
snapshot 3-env-a "$STATE/data/env-a"
step restore-check renc restore-check "$STATE/data/env-a/backups/b.renc" --target env-b --json
step restore renc restore "$STATE/data/env-a/backups/b.renc" --target env-b
step copy-check renc copy-check --from env-a --to env-b
step copy renc copy --from env-b --to env-a
snapshot 4-env-b "$STATE/data/env-b"
step env-show renc env show env-a --json
step env-list renc env list
step keys-versions renc keys versions cmk --json
check "environment data is 0700 folders and 0600 files" \
  test -z "$(find "$STATE/data" \( -type d ! -perm 0700 \) -o \( -type f ! -perm 0600 \))"
expect_mode 600 "$STATE/catalog.db"

# ---- failures: errors name blobs and keys, never key bytes -------------------
cp "$M/sub/multi.renc" "$WORK/tampered.renc"
flip_byte "$WORK/tampered.renc" 200
step_fails decrypt-tampered "$WORK/tampered.renc" renc decrypt "$WORK/tampered.renc" "$WORK/t.out"
step keys-disable renc keys disable cmk/1
step_fails decrypt-disabled "disabled" renc decrypt "$D/small.renc" "$WORK/d.out"
step keys-enable renc keys enable cmk/1
step keys-revoke renc keys revoke rsa
step_fails verify-revoked "revoked" renc verify --progress=json --report "$WORK/report-revoked.json" "$M"
step_fails run-revoked "revoked" renc run --to local:cmk --progress=json \
  --report "$WORK/report-run-revoked.json" "$M"
step keys-restore renc keys restore rsa

# ---- modes -------------------------------------------------------------------
expect_mode 700 "$STATE" "$KR"
for k in "$KR"/*/; do
  expect_mode 700 "${k%/}"
done
mapfile -t KEYFILES < <(find "$KR" -type f \( -name '*.key' -o -name '*.pem' \) | sort)
check "the keyring holds 6 key files (aes 1-2, cmk 1-2, rsa 1, service-mmk 1)" test "${#KEYFILES[@]}" -eq 6
expect_mode 600 "${KEYFILES[@]}"
check "every keyring file is 0600" test -z "$(find "$KR" -type f ! -perm 0600)"
check "every keyring folder is 0700" test -z "$(find "$KR" -type d ! -perm 0700)"
mapfile -t REPORTS < <(ls "$WORK"/report-*.json)
check "every run and verify wrote its report (7)" test "${#REPORTS[@]}" -eq 7
expect_mode 600 "${REPORTS[@]}"
expect_mode 600 "$WORK/small.out" "$WORK/multi.out"
if [ -d "$STATE/journals" ]; then
  expect_mode 700 "$STATE/journals"
  check "every journal file is 0600" test -z "$(find "$STATE/journals" -type f ! -perm 0600)"
fi

# ---- the self-check: planted leaks are found ---------------------------------
# Each planted file holds one leak, in some text, encoded here with standard
# tools (not by the scanner): if the scanner missed a form, this fails.
PL=$WORK/plant
mkdir -p "$PL"
AESKEY=$KR/aes/2.key
hexof() { od -An -v -tx1 | tr -d ' \n'; }
{ printf 'before '; cat "$AESKEY"; printf ' after'; } >"$PL/raw"
{ printf 'half: '; head -c 16 "$AESKEY"; } >"$PL/raw-first-half"
{ printf '{"key":"'; hexof <"$AESKEY"; printf '"}\n'; } >"$PL/hex-lower"
{ printf 'KEY='; hexof <"$AESKEY" | tr a-f A-F; echo; } >"$PL/hex-upper"
{ printf 'id '; tail -c 16 "$AESKEY" | hexof; echo; } >"$PL/hex-second-half"
{ printf 'k: '; od -An -v -tx1 "$AESKEY" | tr -s ' ' ':'; } >"$PL/hex-colons-wrapped"
for a in 0 1 2; do
  { head -c "$a" /dev/zero; cat "$AESKEY"; printf 'tail'; } | base64 -w0 >"$PL/base64-align$a"
  { head -c "$a" /dev/zero; cat "$KR/cmk/1.key"; } | base64 -w0 | tr '+/' '-_' | tr -d = \
    >"$PL/base64url-align$a"
done
{ head -c 100 /dev/urandom; cat "$AESKEY"; head -c 100 /dev/urandom; } | base64 -w 76 \
  >"$PL/base64-wrapped"
if command -v openssl >/dev/null 2>&1; then
  openssl pkey -in "$KR/rsa/1.pem" -text -noout 2>/dev/null |
    sed -n '/^privateExponent/,/^prime1/p' >"$PL/rsa-d-openssl-text"
  check "openssl printed the RSA private exponent" test -s "$PL/rsa-d-openssl-text"
fi
DEKS=1
if DEK=$(python3 "$SCAN" --keyring "$KR" --blobs "$SNAP" dek-hex); then
  printf '%s' "$DEK" | xxd -r -p | base64 -w0 | tr '+/' '-_' >"$PL/dek-base64url"
  printf 'dek=%s\n' "$DEK" >"$PL/dek-hex"
else
  DEKS=0
  echo "note: python3 cryptography missing: DEKs are not looked for" >&2
fi
mapfile -t PLANTED < <(ls "$PL")
python3 "$SCAN" --keyring "$KR" --blobs "$SNAP" scan "$PL" >"$WORK/plant.found" 2>"$WORK/plant.err"
check "the scanner reports the planted leaks (exit 1)" test $? -eq 1
for f in "${PLANTED[@]}"; do
  if grep -q "^FOUND $PL/$f " "$WORK/plant.found"; then
    pass "self-check: found $f"
  else
    fail "self-check: the scanner missed the planted $f"
  fi
done
# And the key files themselves, scanned as if they were not key files (a
# copy outside the keyring), are found too.
mkdir -p "$WORK/keycopy"
cp "$KR/aes/1.key" "$KR/rsa/1.pem" "$WORK/keycopy/"
python3 "$SCAN" --keyring "$KR" scan "$WORK/keycopy" >"$WORK/keycopy.found" 2>/dev/null
check "a copy of a key file is found (AES)" grep -q "^FOUND $WORK/keycopy/1.key " "$WORK/keycopy.found"
check "a copy of a key file is found (RSA)" grep -q "^FOUND $WORK/keycopy/1.pem .*rsa-d" "$WORK/keycopy.found"
rm -rf "$PL" "$WORK/keycopy" "$WORK/plant.found" "$WORK/keycopy.found"

# ---- the scan ------------------------------------------------------------------
# Everything under $WORK: the state folder (keyring state files, .lock,
# journals), reports, outputs, blobs and snapshots, plaintexts and what
# decrypt wrote.  Only the key files themselves are skipped.
python3 "$SCAN" --keyring "$KR" --blobs "$SNAP" --blobs "$D" --blobs "$M" scan "$WORK" \
  >"$WORK/scan.found" 2>"$WORK/scan.err"
rc=$?
sed 's/^/    /' "$WORK/scan.err" >&2
if [ "$rc" -eq 0 ]; then
  pass "no key bytes anywhere but the key files"
else
  fail "key bytes found (scan exit $rc):"
  head -n 20 "$WORK/scan.found" | sed 's/^/    /' >&2
fi
# The scan must have had something to look at and for.
check "the scan read the outputs and reports" \
  grep -qE 'secret_scan: 11 key secrets, .* [0-9]{2,} files' "$WORK/scan.err"
if [ "$DEKS" = 1 ]; then
  # 4 DEKs sealed, kept by the rewrap; 4 new ones from the rekey into the
  # mirror; 2 from the rekey onto rsa with --share-dek 2; 3 put into env-a
  # and its backup; 3 restored into env-b.
  ndeks=$(sed -n 's/.*key secrets, \([0-9]*\) DEKs.*/\1/p' "$WORK/scan.err")
  check "the DEKs of every stage were looked for (got ${ndeks:-none}, want >= 17)" \
    test "${ndeks:-0}" -ge 17
fi

finish
