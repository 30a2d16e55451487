#!/usr/bin/env bash
# tests/e2e/test_pkcs11.sh — the pkcs11 key provider on a SoftHSM2 token
# made in the scratch folder (hsmlib.sh): interop with an independent
# reader through a KEK imported with known bytes (both ways), an RSA key
# pair generated in the token, keys create/rotate/versions/disable in the
# token, an environment's cmk on an HSM key (run, rotation by header
# rewrap, restore-check and copy-check across local and HSM keys,
# revocation locking), and a wrong PIN, a missing token, a removed object
# and an alg the token lacks, each refused clearly, changing nothing.
source "$(dirname "$0")/lib.sh"
source "$RENC_TESTS_DIR/e2e/hsmlib.sh"
hsm_begin renc-hsm
have_pycheck || { echo "SKIP: python3 cryptography is needed (renc_check.py)" >&2; exit 77; }

# ---- interop: a KEK imported with known bytes -------------------------------
head -c 32 /dev/urandom >"$WORK/kek.bin"
p11 --write-object "$WORK/kek.bin" --type secrkey --key-type AES:32 --usage-wrap \
  --label kek --id 01 || fail "pkcs11-tool --write-object kek"
KEK=$(hsm_ref kek)
KEK1=$(hsm_ref kek 01)
mkdir -p "$WORK/ring/kek" && cp "$WORK/kek.bin" "$WORK/ring/kek/1.key" && chmod 600 "$WORK/ring/kek/1.key"
# absent TEXT PATH...: TEXT is in no file under PATH.
absent() { ! grep -rqaF -- "$1" "${@:2}"; }
ind() { python3 "$RENC_TESTS_DIR/e2e/renc_check.py" --keyring "$WORK/ring" "$@"; }

mkdata "$WORK/a.in" 300000
expect_ok renc encrypt --env lab --key "$KEK" "$WORK/a.in" "$WORK/a.renc"
check "the slot names the current version (id=%01) with alg 1" \
  [ "$(inspect_field "$WORK/a.renc" '.slots[0] | "\(.ref) \(.alg)"')" = "$KEK1 1" ]
ind --alias "$KEK1=local:kek/1" "$WORK/a.renc" >"$WORK/ind.json"
check "the independent reader opens the HSM-sealed blob with the same bytes" \
  [ "$(jq -r .sha256 "$WORK/ind.json")" = "$(sha256sum <"$WORK/a.in" | cut -d' ' -f1)" ]
expect_ok renc decrypt "$WORK/a.renc" "$WORK/a.out"
expect_same "the tool opens it through the token" "$WORK/a.in" "$WORK/a.out"
printf '%s\t%s\t%s\n' "$WORK/b.renc" "$KEK1" 70000 >"$WORK/seal.spec"
ind --alias "$KEK1=local:kek/1" --seal "$WORK/seal.spec" >"$WORK/seal.out"
expect_ok renc decrypt "$WORK/b.renc" "$WORK/b.out"
check "a blob the independent writer sealed opens in the token" \
  [ "$(cut -f2 "$WORK/seal.out")" = "$(sha256sum <"$WORK/b.out" | cut -d' ' -f1)" ]

# ---- an RSA key pair generated in the token ---------------------------------
p11 --keypairgen --key-type rsa:2048 --label rsa --id 01 --usage-decrypt --usage-wrap ||
  fail "pkcs11-tool --keypairgen"
expect_ok renc encrypt --env lab --key "$(hsm_ref rsa)" "$WORK/a.in" "$WORK/r.renc"
check "SoftHSM's OAEP is SHA-1 only: the tool seals with alg 3" \
  [ "$(inspect_field "$WORK/r.renc" '.slots[0] | "\(.ref) \(.alg) \(.wrapped_len)"')" = "$(hsm_ref rsa 01) 3 256" ]
expect_ok renc decrypt "$WORK/r.renc" "$WORK/r.out"
expect_same "the RSA-sealed blob opens by unwrapping in the token" "$WORK/a.in" "$WORK/r.out"
run ind "$WORK/r.renc"
check "no key material outside the token opens it" [ "$RC" -ne 0 ]

# An RSA key imported with known material: alg 2 (OAEP-SHA-256) is refused
# clearly by a token that lacks it, alg 3 opens.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/imp.pem" 2>/dev/null
openssl pkey -in "$WORK/imp.pem" -pubout -out "$WORK/imp.pub" 2>/dev/null
p11 --write-object "$WORK/imp.pem" --type privkey --label imp --id 01 --usage-decrypt ||
  fail "import the RSA private key"
p11 --write-object "$WORK/imp.pub" --type pubkey --label imp --id 01 --usage-decrypt ||
  fail "import the RSA public key"
mkdir -p "$WORK/ring/imp" && cp "$WORK/imp.pem" "$WORK/ring/imp/1.pem"
printf '%s\t%s\t%s\n' "$WORK/i2.renc" "$(hsm_ref imp 01)" 5000 >"$WORK/seal.spec"
ind --alias "$(hsm_ref imp 01)=local:imp/1" --rsa-alg 2 --seal "$WORK/seal.spec" >/dev/null
expect_exit 1 renc decrypt "$WORK/i2.renc" "$WORK/i2.out"
expect_msg "cannot open slot alg 2" "SHA-1 only"
check "no output from the refused decrypt" [ ! -e "$WORK/i2.out" ]
printf '%s\t%s\t%s\n' "$WORK/i3.renc" "$(hsm_ref imp 01)" 5000 >"$WORK/seal.spec"
ind --alias "$(hsm_ref imp 01)=local:imp/1" --rsa-alg 3 --seal "$WORK/seal.spec" >"$WORK/seal.out"
expect_ok renc decrypt "$WORK/i3.renc" "$WORK/i3.out"
check "alg 3 under the imported key opens in the token" \
  [ "$(cut -f2 "$WORK/seal.out")" = "$(sha256sum <"$WORK/i3.out" | cut -d' ' -f1)" ]

# ---- keys create / rotate / versions / disable in the token -----------------
CMK=$(hsm_ref cmk)
expect_ok renc keys create "$CMK"
expect_exit 1 renc keys create "$CMK"
expect_msg "already exists"
pkcs11-tool --module "$HSM_MODULE" --token-label renc-hsm --login --pin "$HSM_PIN" --list-objects \
  --type secrkey >"$WORK/objs" 2>&1
check "the generated key is sensitive, never extractable, wrap/unwrap only" \
  grep -A6 "label: *cmk" "$WORK/objs" | grep -q "never extractable"
expect_ok renc keys rotate "$CMK"
expect_out "$(hsm_ref cmk 02)"
expect_ok renc keys versions "$CMK"
expect_out "$(hsm_ref cmk 01)" "$(hsm_ref cmk 02)"
expect_ok renc keys create "$(hsm_ref rsagen)" --type rsa2048
expect_ok renc encrypt --env lab --key "$(hsm_ref rsagen)" "$WORK/a.in" "$WORK/g.renc"
check "a generated RSA pair seals with alg 3" [ "$(inspect_field "$WORK/g.renc" '.slots[0].alg')" = 3 ]
expect_ok renc decrypt "$WORK/g.renc" "$WORK/g.out"
expect_same "and opens in the token" "$WORK/a.in" "$WORK/g.out"

# ---- an environment's cmk on an HSM key: run, rotation, rules ---------------
mkdir -p "$WORK/in"
for i in $(seq -w 1 30); do mkdata "$WORK/in/f$i" $((900 + 131 * 10#$i)); done
expect_ok renc keys create byok1
expect_ok renc env create prod
expect_ok renc env set-policy prod --byok local:byok1
expect_ok renc put --env prod "$WORK/in"
expect_ok renc env set-policy prod --cmk "$CMK"
expect_ok renc run --env prod
expect_out "30 blobs re-encrypted" "prod is encrypted"
check "every blob of prod is under $(hsm_ref cmk 02)" \
  [ "$(slot_refs "$STATE/data/prod/blobs")" = "$(hsm_ref cmk 02) 30" ]
expect_ok renc keys rotate "$CMK"
expect_ok renc run --env prod
expect_out "30 blobs re-encrypted" "rewrapped by rewriting only their header"
check "after the rotation every blob is under $(hsm_ref cmk 03)" \
  [ "$(slot_refs "$STATE/data/prod/blobs")" = "$(hsm_ref cmk 03) 30" ]
expect_ok renc verify --env prod
expect_out "30 blobs verified" "0 failed"
expect_ok renc decrypt "$STATE/data/prod/blobs/in/f07" "$WORK/f07"
expect_same "prod opens to its plaintext" "$WORK/in/f07" "$WORK/f07"

expect_ok renc backup create --env prod
backup=$(ls "$STATE/data/prod/backups/"*.renc | head -n 1)
expect_ok renc env create dr
expect_ok renc env set-policy dr --cmk "$CMK"
expect_ok renc restore-check "$backup" --target dr
expect_out "allowed" "the same customer key" "verdict     yes"
expect_ok renc keys create loccmk
expect_ok renc env create loc
expect_ok renc env set-policy loc --cmk local:loccmk
expect_exit 1 renc restore-check "$backup" --target loc
expect_out "refused" "verdict     no"
expect_exit 1 renc copy-check --from prod --to loc
expect_ok renc copy-check --from prod --to dr

# ---- a wrong PIN, a missing token, a removed object: refused, nothing changed
before=$(tree_hashes "$STATE/data/prod")
expect_ok renc keys rotate "$CMK"
RENC_PKCS11_PIN=9999 expect_exit 1 renc run --env prod --progress=none
expect_msg "CKR_PIN_INCORRECT" "wrong or missing PIN"
check "the PINs given are in no message" absent 9999 "$WORK/out" "$WORK/err"
check "nor the right one" absent "$HSM_PIN" "$WORK/out" "$WORK/err"
check "a wrong PIN changes nothing" [ "$(tree_hashes "$STATE/data/prod")" = "$before" ]
RENC_PKCS11_PIN=9999 expect_exit 1 renc decrypt "$WORK/a.renc" "$WORK/x.out"
expect_msg "CKR_PIN_INCORRECT"
check "no output after a wrong PIN" [ ! -e "$WORK/x.out" ]
# The PIN from a file named in the reference; one others can read is refused.
printf '%s\n' "$HSM_PIN" >"$WORK/pin" && chmod 600 "$WORK/pin"
PINREF="pkcs11:token=$HSM_TOKEN;object=kek?pin-source=file:$WORK/pin"
RENC_PKCS11_PIN= expect_ok renc encrypt --env lab --key "$PINREF" "$WORK/a.in" "$WORK/p.renc"
RENC_PKCS11_PIN= expect_ok renc decrypt "$WORK/p.renc" "$WORK/p.out"
expect_same "pin-source=file: logs in" "$WORK/a.in" "$WORK/p.out"
chmod 644 "$WORK/pin"
RENC_PKCS11_PIN= expect_exit 1 renc decrypt "$WORK/p.renc" "$WORK/p2.out"
expect_msg "mode 0600"
printf 'directories.tokendir = %s/hsm/empty\nobjectstore.backend = file\nlog.level = ERROR\n' \
  "$WORK" >"$WORK/hsm/empty.conf"
mkdir -p "$WORK/hsm/empty"
SOFTHSM2_CONF=$WORK/hsm/empty.conf expect_exit 1 renc run --env prod --progress=none
expect_msg "no token matches"
check "a missing token changes nothing" [ "$(tree_hashes "$STATE/data/prod")" = "$before" ]
expect_exit 1 renc decrypt "$WORK/a.renc" "$WORK/x.out" --pkcs11-module /nonexistent/lib.so
expect_msg "cannot load module" "PKCS#11 module could not be loaded"
p11 --delete-object --type secrkey --label kek --id 01 || fail "delete kek"
expect_exit 1 renc decrypt "$WORK/a.renc" "$WORK/x.out"
expect_msg "a.renc" "$KEK1"
check "no output after a removed object" [ ! -e "$WORK/x.out" ]
p11 --write-object "$WORK/kek.bin" --type secrkey --key-type AES:32 --usage-wrap \
  --label kek --id 01 || fail "write kek again"
expect_ok renc decrypt "$WORK/a.renc" "$WORK/a2.out"
expect_same "the same bytes imported again open it again" "$WORK/a.in" "$WORK/a2.out"

# ---- disable in the token; revocation locks, restore unlocks ----------------
expect_ok renc keys disable "$(hsm_ref cmk 01)"
expect_ok renc keys versions "$CMK"
check "keys versions: version 01 disabled" grep -q "^$(hsm_ref cmk 01) .*disabled" "$WORK/out"
expect_ok renc keys enable "$(hsm_ref cmk 01)"
expect_ok renc keys revoke "$CMK"
expect_out "prod" "dr"
expect_exit 1 renc run --env prod
expect_msg "environment prod is locked" "keys restore"
expect_ok renc keys restore "$CMK"
expect_out "unlocked" "prod"
expect_ok renc run --env prod
expect_out "prod is encrypted" "hsm"
check "the resumed run moved every blob to $(hsm_ref cmk 04)" \
  [ "$(slot_refs "$STATE/data/prod/blobs")" = "$(hsm_ref cmk 04) 30" ]

# ---- the key's objects go away in the middle of a run; the resume ----------
# The run stops itself (SIGSTOP, the fault seam) at its third journal commit, the
# token's folder is taken away, the run let go on: the blobs left fail "key
# not found" (SoftHSM reports its objects gone, not the device), stay as
# they were, and the run resumed once the token is back finishes them.  (A
# stop from outside, at the first progress line, came too late on a fast
# machine: the 2,500 blobs took 30 ms.)
python3 -c 'import os, sys
os.makedirs(sys.argv[1])
for i in range(2500):
    open(os.path.join(sys.argv[1], "m%d" % i), "wb").write(os.urandom(300))' "$WORK/many"
expect_ok renc env create big
expect_ok renc env set-policy big --cmk "$CMK"
expect_ok renc put --env big "$WORK/many"
expect_ok renc keys rotate "$CMK"
RENC_FAULT=journal:3:STOP "$RENC_BIN" run --state "$STATE" --env big --threads 1 \
  --progress=none >"$WORK/big.out" 2>"$WORK/big.err" &
pid=$!
for _ in $(seq 1 3000); do
  [ "$(cut -d" " -f3 "/proc/$pid/stat" 2>/dev/null)" = T ] && break
  sleep 0.01
done
if [ "$(cut -d" " -f3 "/proc/$pid/stat" 2>/dev/null)" = T ]; then
  mv "$WORK/hsm/tokens" "$WORK/hsm/tokens.away"
  kill -CONT "$pid"
  wait "$pid"
  check "the run without its key's objects fails" [ $? -eq 1 ]
  check "it says which key is not found" grep -qF "key not found (key pkcs11:token=$HSM_TOKEN;id=%" "$WORK/big.err"
  mv "$WORK/hsm/tokens.away" "$WORK/hsm/tokens"
  expect_ok renc run --env big
  expect_out "finished by earlier attempts" "big is encrypted"
  expect_ok renc verify --env big --progress=none
  expect_out "2500 blobs verified" "0 failed"
else
  kill -CONT "$pid" 2>/dev/null
  wait "$pid"
  fail "the run of 2500 blobs did not stop at its third journal commit within 30 s"
fi

check "the PIN is nowhere in the state (journals, reports, catalog)" absent "$HSM_PIN" "$STATE"
finish
