#!/usr/bin/env bash
# tests/e2e/test_keyring.sh — the local keyring's lifecycle through the real
# binary: create, list, rotate, disable/enable, revoke/restore, and the
# permission checks; each state change is checked by what it does to opening
# blobs sealed before and after it.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KR=$STATE/keyring
D=$WORK/data
mkdir -p "$D"
mkdata "$D/plain" 10000

# expect_keys SUMMARY: `keys list --json`, one line per key
#   NAME STATE cur=CURRENT VERSION:TYPE:STATE[*] ...   (* marks current)
# joined with "; ", is SUMMARY.  One check covers names, order, types,
# states and the current version of every key.
expect_keys() {
  local got
  got=$(renc keys list --json | jq -r '[.[] | "\(.name) \(.state) cur=\(.current) " +
          ([.versions[] | "\(.version):\(.type):\(.state)" + (if .current then "*" else "" end)]
           | join(" "))] | join("; ")')
  if [ "$got" = "$1" ]; then
    pass "keys: $1"
  else
    fail "keys list: got '$got', wanted '$1'"
  fi
}

# opens BLOB: decrypting BLOB succeeds and gives back $D/plain.
opens() {
  local blob=$1 out=$D/opened
  expect_ok renc decrypt "$blob" "$out" &&
    expect_same "$blob opens to the plaintext" "$D/plain" "$out"
}

# refused CODE BLOB WORDS...: decrypting BLOB exits CODE, says WORDS and the
# file's name, and leaves no output (nor a temporary) behind.
refused() {
  local code=$1 blob=$2
  shift 2
  expect_exit "$code" renc decrypt "$blob" "$D/refused.out"
  expect_msg "$blob" "$@"
  expect_no_output "$D" refused.out
}

# ---- create --------------------------------------------------------------
expect_ok renc keys create mmk
expect_out "created local:mmk/1"
expect_ok renc keys create rsa --type rsa2048
expect_out "created local:rsa/1"
expect_exit 1 renc keys create mmk
expect_msg "mmk" "exists"
expect_exit 2 renc keys create other --type des
expect_msg "unknown --type"
expect_exit 2 renc keys create 'bad/name'
expect_exit 2 renc keys create 'bad name'
check "a refused create leaves no key folder" test ! -e "$KR/other"

# Files 0600, folders 0700, whatever the umask (lib.sh sets 022).
expect_mode 700 "$STATE" "$KR" "$KR/mmk" "$KR/rsa"
expect_mode 600 "$KR/mmk/1.key" "$KR/mmk/state" "$KR/rsa/1.pem"
check "aes256 material is 32 raw bytes" test "$(file_size "$KR/mmk/1.key")" -eq 32
check "rsa2048 material is a 2048-bit PEM key" \
  bash -c "openssl pkey -in '$KR/rsa/1.pem' -noout -text | head -n 1 | grep -q '2048 bit'"

# ---- list ----------------------------------------------------------------
expect_ok renc keys list
expect_out "mmk" "rsa" "aes256" "enabled"
expect_keys "mmk enabled cur=1 1:aes256:enabled*; rsa enabled cur=1 1:rsa:enabled*"

# RENC_HOME alone (no --state) finds the same keyring.
run env RENC_HOME="$STATE" "$RENC_BIN" keys list --json
check "RENC_HOME selects the state folder" grep -q '"mmk"' "$WORK/out"

# ---- blobs under version 1 -------------------------------------------------
expect_ok renc encrypt --env dev --key local:mmk --segment-size 4K "$D/plain" "$D/v1.renc"
check "unversioned --key stores the current version" \
  test "$(inspect_field "$D/v1.renc" '.slots[0].ref')" = local:mmk/1
check "aes256 slot uses A256KWP (alg 1)" test "$(inspect_field "$D/v1.renc" '.slots[0].alg')" = 1
expect_ok renc encrypt --env dev --key local:rsa "$D/plain" "$D/rsa1.renc"
check "rsa slot uses RSA-OAEP-256 (alg 2)" \
  test "$(inspect_field "$D/rsa1.renc" '.slots[0].alg_name')" = RSA-OAEP-256
opens "$D/v1.renc"
opens "$D/rsa1.renc"

# ---- rotate --------------------------------------------------------------
expect_ok renc keys rotate mmk
expect_out "current version is now 2"
expect_keys "mmk enabled cur=2 1:aes256:enabled 2:aes256:enabled*; rsa enabled cur=1 1:rsa:enabled*"
expect_mode 600 "$KR/mmk/2.key" "$KR/mmk/state"
check "rotate: v2 material differs from v1" bash -c "! cmp -s '$KR/mmk/1.key' '$KR/mmk/2.key'"
expect_ok renc encrypt --env dev --key local:mmk --segment-size 4K "$D/plain" "$D/v2.renc"
check "a blob sealed after rotation names version 2" \
  test "$(inspect_field "$D/v2.renc" '.slots[0].ref')" = local:mmk/2
opens "$D/v1.renc"   # sealed before rotation: still opens
opens "$D/v2.renc"
expect_exit 2 renc keys rotate mmk/2
expect_exit 1 renc keys rotate nosuch
expect_msg "not found"

expect_ok renc keys rotate rsa
check "rsa rotation keeps the key size" \
  bash -c "openssl pkey -in '$KR/rsa/2.pem' -noout -text | head -n 1 | grep -q '2048 bit'"
expect_mode 600 "$KR/rsa/2.pem"
opens "$D/rsa1.renc"
# The size is kept even when the current version cannot be used (disabled
# or revoked, the usual reason to rotate): it comes from the material.
expect_ok renc keys create rsb --type rsa2048
expect_ok renc keys disable rsb/1
expect_ok renc keys rotate rsb
expect_ok renc keys revoke rsb/2
expect_ok renc keys rotate rsb
check "rsa rotation from a disabled, then a revoked, current version keeps 2048 bits" \
  bash -c "openssl pkey -in '$KR/rsb/2.pem' -noout -text | head -n 1 | grep -q '2048 bit' &&
           openssl pkey -in '$KR/rsb/3.pem' -noout -text | head -n 1 | grep -q '2048 bit'"

# ---- disable / enable ------------------------------------------------------
expect_ok renc keys disable mmk/1
expect_keys "mmk enabled cur=2 1:aes256:disabled 2:aes256:enabled*; rsa enabled cur=2 1:rsa:enabled 2:rsa:enabled*; rsb enabled cur=3 1:rsa:disabled 2:rsa:revoked 3:rsa:enabled*"
refused 1 "$D/v1.renc" "disabled" "local:mmk/1"
opens "$D/v2.renc"    # another version is unaffected
expect_exit 1 renc encrypt --env dev --key local:mmk/1 "$D/plain" "$D/new.renc"
expect_msg "disabled" "local:mmk/1"
expect_no_output "$D" new.renc
expect_exit 2 renc keys disable mmk
expect_msg "NAME/VERSION"
expect_exit 1 renc keys disable mmk/9
expect_msg "not found"
expect_ok renc keys enable mmk/1
expect_keys "mmk enabled cur=2 1:aes256:enabled 2:aes256:enabled*; rsa enabled cur=2 1:rsa:enabled 2:rsa:enabled*; rsb enabled cur=3 1:rsa:disabled 2:rsa:revoked 3:rsa:enabled*"
opens "$D/v1.renc"

# ---- revoke / restore the whole key -----------------------------------------
expect_ok renc keys revoke mmk
# A revoked key shows every version revoked.
expect_keys "mmk revoked cur=2 1:aes256:revoked 2:aes256:revoked*; rsa enabled cur=2 1:rsa:enabled 2:rsa:enabled*; rsb enabled cur=3 1:rsa:disabled 2:rsa:revoked 3:rsa:enabled*"
refused 1 "$D/v1.renc" "revoked" "local:mmk/1"
refused 1 "$D/v2.renc" "revoked" "local:mmk/2"
expect_exit 1 renc encrypt --env dev --key local:mmk "$D/plain" "$D/new.renc"
expect_msg "revoked"
expect_no_output "$D" new.renc
expect_exit 1 renc keys rotate mmk
expect_msg "revoked"
opens "$D/rsa1.renc"  # other keys unaffected
expect_ok renc keys restore mmk
opens "$D/v1.renc"
opens "$D/v2.renc"

# ---- revoke / restore one version ------------------------------------------
expect_ok renc keys revoke mmk/1
expect_keys "mmk enabled cur=2 1:aes256:revoked 2:aes256:enabled*; rsa enabled cur=2 1:rsa:enabled 2:rsa:enabled*; rsb enabled cur=3 1:rsa:disabled 2:rsa:revoked 3:rsa:enabled*"
refused 1 "$D/v1.renc" "revoked" "local:mmk/1"
opens "$D/v2.renc"
expect_ok renc keys restore mmk/1
opens "$D/v1.renc"

# Revoke wins over disable, and enable does not undo a revoke of the key.
expect_ok renc keys disable mmk/1
expect_ok renc keys revoke mmk
refused 1 "$D/v1.renc" "revoked"
expect_ok renc keys enable mmk/1
refused 1 "$D/v1.renc" "revoked"
expect_ok renc keys restore mmk
opens "$D/v1.renc"

# ---- a key the keyring does not have ----------------------------------------
OTHER=$WORK/other-state
"$RENC_BIN" keys create mmk --state "$OTHER" >/dev/null
"$RENC_BIN" encrypt --state "$OTHER" --env dev --key local:mmk "$D/plain" "$D/foreign.renc" >/dev/null
refused 1 "$D/foreign.renc" "local:mmk/1"   # same name, other material: does not unwrap
"$RENC_BIN" keys create lonely --state "$OTHER" >/dev/null
"$RENC_BIN" encrypt --state "$OTHER" --env dev --key local:lonely "$D/plain" "$D/lonely.renc" >/dev/null
refused 1 "$D/lonely.renc" "not found" "local:lonely/1"

# ---- permissions ----------------------------------------------------------
# The keyring folder open to others: refused by every command that uses it.
chmod 0755 "$KR"
expect_exit 1 renc keys list
expect_msg "insecure permissions"
run renc decrypt "$D/v1.renc" "$D/perm.out"
check "decrypt refuses a 0755 keyring (exit != 0)" test "$RC" -ne 0
expect_msg "insecure permissions"
expect_no_output "$D" perm.out
run renc encrypt --env dev --key local:mmk "$D/plain" "$D/perm.renc"
check "encrypt refuses a 0755 keyring (exit != 0)" test "$RC" -ne 0
expect_msg "insecure permissions"
expect_no_output "$D" perm.renc
expect_exit 1 renc keys create newkey
expect_msg "insecure permissions"
chmod 0700 "$KR"
opens "$D/v1.renc"

# A key file readable by others.
chmod 0644 "$KR/mmk/1.key"
run renc decrypt "$D/v1.renc" "$D/perm.out"
check "decrypt refuses a 0644 key file (exit != 0)" test "$RC" -ne 0
expect_msg "$D/v1.renc" "insecure permissions" "local:mmk/1"
expect_no_output "$D" perm.out
chmod 0600 "$KR/mmk/1.key"
opens "$D/v1.renc"

# A group-readable PEM, key folder and state file.
chmod 0640 "$KR/rsa/1.pem"
run renc decrypt "$D/rsa1.renc" "$D/perm.out"
check "decrypt refuses a 0640 PEM key file (exit != 0)" test "$RC" -ne 0
expect_msg "insecure permissions"
expect_no_output "$D" perm.out
chmod 0600 "$KR/rsa/1.pem"
chmod 0750 "$KR/mmk"
run renc decrypt "$D/v2.renc" "$D/perm.out"
check "decrypt refuses a 0750 key folder (exit != 0)" test "$RC" -ne 0
expect_msg "insecure permissions"
expect_no_output "$D" perm.out
chmod 0700 "$KR/mmk"
chmod 0604 "$KR/mmk/state"
run renc keys list
check "list refuses a world-readable state file (exit != 0)" test "$RC" -ne 0
expect_msg "insecure permissions"
chmod 0600 "$KR/mmk/state"
opens "$D/v2.renc"

# A damaged state file with a NUL byte is refused, not read up to the NUL:
# here the line after it revokes the key, so stopping there would open.
cp -p "$KR/mmk/state" "$WORK/state.saved"
printf '\0\nkey revoked\n' >>"$KR/mmk/state"
run renc decrypt "$D/v2.renc" "$D/perm.out"
check "decrypt refuses a state file with a NUL byte (exit != 0)" test "$RC" -ne 0
expect_msg "$D/v2.renc" "keyring state malformed"
expect_no_output "$D" perm.out
cp -p "$WORK/state.saved" "$KR/mmk/state"
opens "$D/v2.renc"

# After everything, still nothing but 0600 files and 0700 folders.
check "every keyring file is 0600" \
  test -z "$(find "$KR" -type f ! -perm 0600)"
check "every keyring folder is 0700" \
  test -z "$(find "$KR" -type d ! -perm 0700)"
check "no temporaries left in the keyring" test -z "$(find "$KR" -name '*.tmp.*' -o -name '.*.tmp')"
# Decrypted plaintext is private whatever the umask (lib.sh sets 022).
expect_ok renc decrypt "$D/v1.renc" "$D/private.out"
expect_mode 600 "$D/private.out"

# A state with no keyring folder is an empty keyring: nothing to list, every
# key not found, and no folder made by asking.
NOKR=$WORK/no-keyring
for c in "rotate x" "disable x/1" "revoke x" "versions x"; do
  # shellcheck disable=SC2086
  expect_exit 1 "$RENC_BIN" keys $c --state "$NOKR"
  expect_msg "key not found"
done
expect_ok "$RENC_BIN" keys list --state "$NOKR"
check "keys list of no keyring lists nothing" [ "$(wc -l <"$WORK/out")" -eq 1 ]
check "asking made no keyring folder" [ ! -e "$NOKR/keyring" ]

finish
