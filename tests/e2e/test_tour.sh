#!/usr/bin/env bash
# tests/e2e/test_tour.sh — every command and every path of the run engine,
# once each, on a small corpus: the test that takes those paths under
# Valgrind memcheck, where the big end-to-end tests cannot go
# (tests/CMakeLists.txt).  The release and sanitizer passes run it too.
#
# The paths: put; plan; run --env as a header rewrap in place (two workers) and
# as a rekey (whole-file replace), with the journal; a run failing on ENOSPC
# and its resume; a run killed after a header write, its recovery and resume;
# verify; status; a backup, restore-check and restore; copy-check and copy;
# keys rotate/disable/versions; and the key vault provider (libcurl, TLS,
# tokens, wrap and unwrap) against the local test double.  Each step checks
# its result, not just its exit code.
source "$(dirname "$0")/lib.sh"
source "$RENC_TESTS_DIR/vault/vaultlib.sh"

DATA=$STATE/data
IN=$WORK/in
mkdir -p "$IN/sub"
for i in 1 2 3 4 5 6; do mkdata "$IN/f$i" $((i * 3000 + 11)); done
mkdata "$IN/sub/big" $((3 * 1024 * 1024 + 5))
mkdata "$IN/sub/text" 200000 text

# versions ENV: "REF COUNT" per key version the slots of ENV's blobs name.
versions() { slot_refs "$DATA/$1/blobs"; }

# opens ENV: every blob of ENV decrypts to its original under $IN.
opens() {
  local f rel
  while IFS= read -r -d '' f; do
    rel=${f#"$DATA/$1/blobs/in/"}
    rm -f "$WORK/o"
    renc decrypt "$f" "$WORK/o" >/dev/null 2>&1 && same "$WORK/o" "$IN/$rel" || return 1
  done < <(find "$DATA/$1/blobs" -type f ! -name '.*' -print0)
}

# ---- an environment, its data, a policy key --------------------------------
expect_ok renc keys create k
expect_ok renc env create prod
expect_ok renc put --env prod "$IN"
expect_out "sealed 8 files"
expect_ok renc env set-policy prod --byok local:k
expect_out "8 of 8 blobs and backups are not under local:k"
expect_ok renc plan "$DATA/prod/blobs"
expect_out "8 RENC blobs"

# ---- run --env: header rewrap in place, two workers --------------------------
expect_ok renc run --env prod --threads 2 --progress=none
expect_out "8 blobs re-encrypted" "rewrapped by rewriting only their header" "prod is encrypted"
check "every blob of prod is under local:k/1" [ "$(versions prod)" = "local:k/1 8" ]
check "prod opens to its plaintext" opens prod
expect_ok renc verify --env prod --progress=none
expect_out "8 blobs verified" "0 failed"
expect_ok renc status --env prod
expect_out "done"

# ---- rekey: whole files replaced; a full disk on the way, then the resume ----
expect_ok renc keys rotate k
run env RENC_FAULT=write:2:ENOSPC "$RENC_BIN" run --state "$STATE" --env prod --mode rekey \
  --threads 1 --progress=none
check "a run that meets a full disk exits 1" [ "$RC" -eq 1 ]
expect_msg "no space left"
check "no temporaries after the full disk" no_temporaries "$DATA/prod/blobs"
check "prod still opens after the full disk" opens prod
expect_ok renc run --env prod --mode rekey --threads 1 --progress=none
expect_out "attempt 2" "prod is encrypted"
check "after the resume every blob is under local:k/2" [ "$(versions prod)" = "local:k/2 8" ]
check "prod opens after the rekey" opens prod

# ---- a run killed after in-place header writes: recovery, then the resume -----
expect_ok renc keys rotate k
# (--barrier file: the kill counts its per-file barriers.)
run env RENC_FAULT=fsync:3:KILL "$RENC_BIN" run --state "$STATE" --env prod --threads 1 \
  --barrier file --progress=none
check "the run was killed" [ "$RC" -eq 137 ]
expect_ok renc run --env prod --threads 1 --progress=none
expect_out "prod is encrypted"
check "after the crash and the resume every blob is under local:k/3" [ "$(versions prod)" = "local:k/3 8" ]
check "prod opens after the crash" opens prod
expect_ok renc keys disable k/1
expect_ok renc keys versions k
expect_out "disabled"

# ---- backup, restore, copy ------------------------------------------------------
expect_ok renc env create dr
expect_ok renc env set-policy dr --byok local:k
expect_ok renc backup create --env prod --name b1.renc
expect_out "8 blobs"
expect_ok renc restore-check "$DATA/prod/backups/b1.renc" --target dr
expect_out "allowed"
expect_ok renc restore "$DATA/prod/backups/b1.renc" --target dr
check "dr holds prod's blobs after the restore" opens dr
expect_ok renc copy-check --from prod --to dr
expect_ok renc copy --from prod --to dr
check "dr opens after the copy" opens dr
expect_ok renc env show dr --json
check "dr is encrypted under local:k" \
  [ "$(jq -r '"\(.status) \(.key_ref)"' "$WORK/out")" = "encrypted local:k" ]

# ---- the key vault provider: BYOK to a vault key, verify, one decrypt -----------
vault_start "$WORK/vault" || { fail "the vault server did not start"; finish; }
export RENC_CA_FILE=$VAULT_CA
V1="akv:$(vault_create_key cmk RSA 2048)" || fail "create cmk"
expect_ok renc env set-policy dr --cmk "akv:$VAULT_URL/keys/cmk"
expect_ok renc run --env dr --progress=none
expect_out "8 blobs re-encrypted" "key vault:" "dr is encrypted"
check "every blob of dr is under the vault key" [ "$(versions dr)" = "$V1 8" ]
expect_ok renc verify --env dr --progress=none
expect_out "8 blobs verified" "0 failed"
check "dr opens through the vault" opens dr
expect_ok renc keys versions "akv:$VAULT_URL/keys/cmk"
expect_out "${V1##*/}"
finish
