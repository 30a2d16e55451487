#!/usr/bin/env bash
# tests/e2e/test_env.sh — environments, policies, the key lifecycle rules,
# backups, restore and copy with their rules, and locks, through the real
# binary on real files (docs/ENVIRONMENTS.md).
#
# Every refusal is checked twice: the exit code and words of the message, and
# that the data it must not touch is byte-for-byte what it was (tree_hashes
# before and after).
source "$(dirname "$0")/lib.sh"

DATA=$STATE/data
ORIG=$WORK/orig
mkdir -p "$ORIG"

# slots FILE: the slot refs of a blob, joined with ','.
slots() {
  renc inspect "$1" | jq -r '[.slots[].ref] | join(",")'
}

# all_slots ENV: the distinct slot refs of every file of ENV, sorted, joined.
all_slots() {
  local f out=()
  while IFS= read -r -d '' f; do
    out+=("$(slots "$f")")
  done < <(find "$DATA/$1" -type f ! -name '.*' -print0)
  printf '%s\n' "${out[@]}" | sort -u | paste -sd' '
}

# plain_of ENV NAME OUT: decrypts DATA/ENV/blobs/NAME to OUT.
plain_of() {
  renc decrypt "$DATA/$1/blobs/$2" "$3" >/dev/null 2>&1
}

# expect_plain DESC ENV NAME ORIGINAL
expect_plain() {
  rm -f "$WORK/p.out"
  if plain_of "$2" "$3" "$WORK/p.out" && same "$WORK/p.out" "$4"; then
    pass "$1"
  else
    fail "$1: $2/$3 does not decrypt to $4"
  fi
}

# unchanged DESC DIR HASHFILE: DIR's files are what HASHFILE recorded.
unchanged() {
  if diff -q <(tree_hashes "$2") "$3" >/dev/null; then
    pass "$1: nothing changed"
  else
    fail "$1: files changed"
    diff <(tree_hashes "$2") "$3" | head -n 5 >&2
  fi
}

# ---- catalog basics ----------------------------------------------------------
expect_exit 2 renc env list
expect_msg "no environments"
expect_ok renc env create prod --region eu-west
expect_out "created the service-managed key local:service-mmk" "policy mmk"
check "data layout: DATA/prod/blobs and backups" test -d "$DATA/prod/blobs" -a -d "$DATA/prod/backups"
expect_mode 700 "$DATA/prod" "$DATA/prod/blobs"
expect_mode 600 "$STATE/catalog.db"
expect_exit 1 renc env create prod
expect_msg "prod" "already exists"
for bad in '.hidden' '-x' 'a/b' 'has space' ''; do
  expect_exit 2 renc env create "$bad"
done
expect_exit 2 renc env show nosuch
expect_msg "nosuch" "no such environment"

for k in byok-prod cmk-shared cmk-other; do
  expect_ok renc keys create "$k"
done
for e in staging dev analytics; do
  expect_ok renc env create "$e"
done

# ---- put, and the encryption status ----------------------------------------
for i in 1 2 3; do mkdata "$ORIG/p$i.bin" $((i * 70000 + 5)); done
mkdata "$ORIG/empty.bin" 0
mkdata "$ORIG/text.txt" 300000 text
expect_ok renc put --env prod "$ORIG/p1.bin" "$ORIG/p2.bin" "$ORIG/p3.bin" "$ORIG/empty.bin"
expect_out "sealed 4 files" "local:service-mmk/1"
expect_ok renc put --env prod --name reports/2026/text.txt "$ORIG/text.txt"
check "put names the blob's env, kind and name in its context" \
  test "$(renc inspect "$DATA/prod/blobs/reports/2026/text.txt" | jq -r '.context.env + " " + .context.kind + " " + .context.name')" = "prod blob reports/2026/text.txt"
expect_exit 1 renc put --env prod "$ORIG/p1.bin"
expect_msg "exists" "--replace"
expect_exit 2 renc put --env prod --name ../escape "$ORIG/p1.bin"
expect_exit 2 renc put --env nosuch "$ORIG/p1.bin"
mkdir -p "$WORK/tree/a/b"
mkdata "$WORK/tree/a/b/deep.bin" 5000
mkdata "$WORK/tree/top.bin" 10
expect_ok renc put --env dev "$WORK/tree"
expect_out "sealed 2 files"
check "put DIR names blobs by the folder's name and their path below it" \
  test -f "$DATA/dev/blobs/tree/a/b/deep.bin" -a -f "$DATA/dev/blobs/tree/top.bin"
expect_plain "put DIR round trip" dev tree/a/b/deep.bin "$WORK/tree/a/b/deep.bin"
tree_hashes "$DATA/dev" >"$WORK/h.dev"
mkdata "$WORK/tree/new.bin" 10
expect_exit 1 renc put --env dev "$WORK/tree"
expect_msg "tree/a/b/deep.bin" "exists"
unchanged "put refused on one existing name adds none of the others" "$DATA/dev" "$WORK/h.dev"
expect_plain "put round trip" prod p2.bin "$ORIG/p2.bin"
expect_plain "put round trip (nested name)" prod reports/2026/text.txt "$ORIG/text.txt"
expect_ok renc env show prod --json
check "show: 5 blobs, status encrypted, mmk" \
  test "$(jq -r '[.blobs.count, .status, .policy] | join(" ")' "$WORK/out")" = "5 encrypted mmk"

# ---- mmk -> byok, a backup, byok -> cmk: the migration --------------------
expect_ok renc env set-policy prod --byok local:byok-prod
expect_out "mmk local:service-mmk -> byok local:byok-prod" "5 of 5" "run --env prod"
expect_ok renc env show prod
expect_out "status        warning" "not under key"
expect_exit 2 renc env set-policy prod --byok local:byok-prod/1
expect_msg "not a version"
expect_exit 1 renc env set-policy prod --byok local:nosuchkey
expect_msg "key not found"
expect_ok renc run --env prod --progress=none
expect_out "environment prod: byok local:byok-prod" "5 blobs re-encrypted" "environment prod is encrypted"
check "after the byok run every blob is under byok-prod/1" test "$(all_slots prod)" = "local:byok-prod/1"
expect_ok renc backup create --env prod --name before-cmk.renc
expect_out "5 blobs" "local:byok-prod/1"
BK_BYOK=$DATA/prod/backups/before-cmk.renc
check "backup context: kind backup, source-env prod" \
  test "$(renc inspect "$BK_BYOK" | jq -r '.context.kind + " " + .context["source-env"]')" = "backup prod"
cp "$BK_BYOK" "$WORK/offsite-byok.renc"
# The archive inside, read by a second reader written from docs/FORMAT.md.
renc decrypt "$BK_BYOK" "$WORK/archive.bin" >/dev/null
check "backup archive matches docs/FORMAT.md and the blobs' plaintexts" python3 - "$WORK/archive.bin" "$ORIG" <<'PY'
import hashlib, struct, sys
data = open(sys.argv[1], "rb").read()
orig = sys.argv[2]
want = {"empty.bin": "empty.bin", "p1.bin": "p1.bin", "p2.bin": "p2.bin", "p3.bin": "p3.bin",
        "reports/2026/text.txt": "text.txt"}
assert data[:8] == b"RENCBAK1", data[:8]
off, names, total = 8, [], 0
while True:
    t = data[off]; off += 1
    if t == 0:
        count, nbytes = struct.unpack(">QQ", data[off:off + 16]); off += 16
        break
    assert t == 1, t
    (nl,) = struct.unpack(">H", data[off:off + 2]); off += 2
    name = data[off:off + nl].decode(); off += nl
    (size,) = struct.unpack(">Q", data[off:off + 8]); off += 8
    content = data[off:off + size]; off += size
    assert open(orig + "/" + want[name], "rb").read() == content, name
    names.append(name); total += size
assert off == len(data), "bytes after the end record"
assert names == sorted(names, key=lambda n: n.encode()) and names == sorted(want), names
assert (count, nbytes) == (len(names), total), (count, nbytes)
PY

expect_ok renc env set-policy prod --cmk local:cmk-shared
expect_out "byok local:byok-prod -> cmk local:cmk-shared" "6 of 6"
expect_ok renc run --env prod --progress=json
expect_out "environment prod is encrypted" '"type":"progress"'
check "after the cmk run blobs and backups are under cmk-shared/1" test "$(all_slots prod)" = "local:cmk-shared/1"
for i in 1 2 3; do expect_plain "cmk migration keeps p$i" prod "p$i.bin" "$ORIG/p$i.bin"; done
expect_plain "cmk migration keeps the empty blob" prod empty.bin "$ORIG/empty.bin"
expect_ok renc env show prod --json
check "history records both policy changes" \
  test "$(jq '[.history[] | select(.action == "set-policy")] | length' "$WORK/out")" = 2
check "last run recorded as finished" test "$(jq -r '.last_run.outcome' "$WORK/out")" = finished

# ---- restore and copy rules ---------------------------------------------------
expect_ok renc env set-policy staging --cmk local:cmk-shared
expect_ok renc env set-policy analytics --cmk local:cmk-other
mkdata "$ORIG/s1.bin" 1234
expect_ok renc put --env staging "$ORIG/s1.bin"
expect_ok renc put --env analytics "$ORIG/s1.bin"
expect_ok renc put --env dev "$ORIG/s1.bin"
expect_ok renc backup create --env prod --name cmk-1.renc
BK=$DATA/prod/backups/cmk-1.renc

expect_ok renc restore-check "$BK" --target prod
expect_out "allowed" "own environment" "valid" "5 blobs" "verdict     yes"
expect_ok renc restore-check "$BK" --target staging
expect_out "allowed" "local:cmk-shared" "valid" "verdict     yes"
expect_ok renc restore-check "$BK" --target staging --json
check "restore-check --json: allowed and valid" \
  test "$(jq -r '"\(.allowed) \(.valid) \(.blobs)"' "$WORK/out")" = "true true 5"
tree_hashes "$DATA" >"$WORK/h.all"
expect_exit 1 renc restore-check "$BK" --target analytics
expect_out "refused" "local:cmk-other" "local:cmk-shared" "verdict     no"
expect_exit 1 renc restore-check "$BK" --target dev
expect_out "refused" "service-managed" "verdict     no"
expect_exit 1 renc restore "$BK" --target analytics
expect_msg "refused" "cmk-other"
expect_exit 1 renc restore "$BK" --target dev
expect_msg "refused" "service-managed"
unchanged "refused restores and the checks" "$DATA" "$WORK/h.all"
check "checks write no plaintext (no new file under the state folder)" \
  test -z "$(find "$STATE" -newer "$WORK/h.all" -type f ! -name 'catalog.db*' -print -quit)"

expect_ok renc restore "$BK" --target staging
expect_out "5 blobs" "sealed under local:cmk-shared/1"
expect_plain "restored into staging" staging p3.bin "$ORIG/p3.bin"
expect_plain "restored nested name" staging reports/2026/text.txt "$ORIG/text.txt"
expect_plain "restore leaves staging's own blob" staging s1.bin "$ORIG/s1.bin"
check "restored blobs name staging" \
  test "$(renc inspect "$DATA/staging/blobs/p1.bin" | jq -r .context.env)" = staging
expect_no_temporaries "restore" "$DATA"

tree_hashes "$DATA" >"$WORK/h.all"
expect_exit 1 renc copy --from prod --to dev
expect_msg "refused" "service-managed"
expect_exit 1 renc copy --from prod --to analytics
expect_msg "refused" "cmk-other"
expect_exit 1 renc copy-check --from prod --to dev
expect_out "refused" "verdict     no"
unchanged "refused copies" "$DATA" "$WORK/h.all"
expect_ok renc copy-check --from prod --to staging
expect_out "allowed" "share" "local:cmk-shared" "valid"
expect_ok renc copy --from staging --to prod
expect_out "copied"
expect_plain "copied blob" prod s1.bin "$ORIG/s1.bin"
check "copied blob names prod" test "$(renc inspect "$DATA/prod/blobs/s1.bin" | jq -r .context.env)" = prod

# The old byok backup (taken before the switch) is under a key staging
# never held: the rule refuses (different key) and the validation cannot open it.
expect_exit 1 renc restore-check "$WORK/offsite-byok.renc" --target staging
expect_out "refused" "invalid"
# Into its own environment it is allowed, and prod still holds byok-prod.
expect_ok renc restore-check "$WORK/offsite-byok.renc" --target prod
expect_out "allowed" "local:byok-prod/1" "verdict     yes"

# ---- rotation, and the versions still needed ---------------------------------
expect_ok renc backup create --env prod --name before-rotation.renc
cp "$DATA/prod/backups/before-rotation.renc" "$WORK/offsite-rot.renc" # kept outside the data
expect_ok renc keys rotate cmk-shared
# A backup taken before the rotation restores after it: version 1 is kept.
expect_ok renc restore "$WORK/offsite-rot.renc" --target staging
expect_out "opened with local:cmk-shared/1" "sealed under local:cmk-shared/2"
expect_ok renc keys versions cmk-shared
expect_out "local:cmk-shared/1" "prod:" "staging:"
tree_hashes "$DATA" >"$WORK/h.all"
expect_exit 1 renc keys disable cmk-shared/1
expect_msg "still needed" "prod: 6 blobs, 3 backups" "run --env"
unchanged "refused disable" "$DATA" "$WORK/h.all"
check "refused disable leaves the version enabled" \
  test "$(renc keys list --json | jq -r '.[] | select(.name=="cmk-shared") | .versions[] | select(.version=="1") | .state')" = enabled
# Disabled by force, the old version no longer opens that backup: a clear error.
expect_ok renc keys disable cmk-shared/1 --force
expect_exit 1 renc restore "$WORK/offsite-rot.renc" --target staging
expect_msg "disabled" "local:cmk-shared/1" "nothing was restored"
expect_exit 1 renc restore-check "$WORK/offsite-rot.renc" --target staging
expect_out "invalid" "disabled" "local:cmk-shared/1" "verdict     no"
unchanged "failed restore" "$DATA" "$WORK/h.all"
expect_ok renc keys enable cmk-shared/1
# The migration run moves prod by header rewrap to version 2.
expect_ok renc run --env prod --mode rewrap --progress=none
expect_out "rewrapped by rewriting only their header" "environment prod is encrypted"
check "prod is on cmk-shared/2 after the rewrap" test "$(all_slots prod)" = "local:cmk-shared/2"
expect_ok renc run --env staging --progress=none
expect_ok renc keys versions cmk-shared --json
check "version 1 no longer needed, version 2 is" \
  test "$(jq -r '[.[] | "\(.ref)=\(.files)"] | join(" ")' "$WORK/out")" = "local:cmk-shared/1=0 local:cmk-shared/2=$(find "$DATA/prod" "$DATA/staging" -type f ! -name '.*' | wc -l)"
expect_ok renc keys disable cmk-shared/1
expect_ok renc restore-check "$DATA/prod/backups/before-rotation.renc" --target staging

# ---- locks ----------------------------------------------------------------------
tree_hashes "$DATA" >"$WORK/h.all"
expect_ok renc keys revoke cmk-other
expect_out "locked 1 environments using local:cmk-other: analytics"
expect_ok renc env show analytics --json
check "analytics is locked" test "$(jq -r .status "$WORK/out")" = locked
expect_exit 1 renc run --env analytics --progress=none
expect_msg "analytics is locked" "revoked"
expect_exit 1 renc put --env analytics "$ORIG/p1.bin"
expect_msg "locked"
expect_exit 1 renc restore "$DATA/prod/backups/before-rotation.renc" --target analytics
expect_msg "locked"
expect_exit 1 renc copy --from analytics --to staging
expect_msg "locked"
expect_exit 1 renc backup create --env analytics
expect_msg "locked"
expect_exit 1 renc env set-policy analytics --cmk local:cmk-shared
expect_msg "locked"
expect_exit 1 renc restore-check "$DATA/prod/backups/before-rotation.renc" --target analytics
expect_out "locked" "not run"
unchanged "operations on a locked environment" "$DATA" "$WORK/h.all"
expect_ok renc keys restore cmk-other
expect_out "unlocked 1 environments using local:cmk-other: analytics"
expect_ok renc run --env analytics --progress=none
expect_out "environment analytics is encrypted"

expect_ok renc env lock dev
tree_hashes "$DATA" >"$WORK/h.all"
expect_exit 1 renc put --env dev "$ORIG/p2.bin"
expect_msg "locked by the operator"
expect_exit 1 renc run --all-envs --progress=none
expect_msg "dev is locked"
expect_out "environment prod" "environment staging"
expect_ok renc env unlock dev
expect_ok renc put --env dev "$ORIG/p2.bin"

# ---- faults: a full disk or a kill in the middle changes nothing -------------
BKP=$DATA/prod/backups/before-rotation.renc
tree_hashes "$DATA" >"$WORK/h.all"
RENC_FAULT=write:3:ENOSPC expect_exit 1 renc restore "$BKP" --target prod
expect_msg "no space left" "nothing was restored"
unchanged "restore on a full disk" "$DATA" "$WORK/h.all"
RENC_FAULT=write:2:EIO expect_exit 1 renc put --env prod --replace "$ORIG/p1.bin" "$ORIG/p2.bin"
expect_msg "input/output error"
unchanged "put with an I/O error" "$DATA" "$WORK/h.all"
RENC_FAULT=fsync:1:ENOSPC expect_exit 1 renc backup create --env prod --name never.renc
unchanged "backup on a full disk" "$DATA" "$WORK/h.all"
RENC_FAULT=write:4:ENOSPC expect_exit 1 renc copy --from prod --to staging
unchanged "copy on a full disk" "$DATA" "$WORK/h.all"
# Killed between two blobs' barriers: temporaries stay, no final path changed;
# the next command on the environment removes them (their tag is recorded).
run env RENC_FAULT=fsync:1:KILL "$RENC_BIN" restore --state "$STATE" "$BKP" --target prod
check "restore killed mid-way (SIGKILL)" test "$RC" -eq 137
check "the kill left temporaries" test -n "$(temporaries "$DATA/prod")"
expect_ok renc env show prod
expect_out "interrupted restore" "temporary files are removed"
unchanged "killed restore, after the sweep" "$DATA" "$WORK/h.all"
expect_ok renc run --env prod --progress=none

# ---- reset -----------------------------------------------------------------------
tree_hashes "$DATA" >"$WORK/h.all"
expect_exit 2 renc env reset staging
expect_msg "--yes"
unchanged "reset without --yes" "$DATA" "$WORK/h.all"
expect_ok renc env reset staging --yes
expect_out "policy is now mmk local:service-mmk"
check "reset emptied staging" test -z "$(find "$DATA/staging" -type f)"
expect_ok renc env show staging --json
check "reset: mmk, no blobs, history kept" \
  test "$(jq -r '"\(.policy) \(.blobs.count) \([.history[] | select(.action=="reset")] | length)"' "$WORK/out")" = "mmk 0 1"

# ---- the cmk limit: the 26th customer-managed environment is refused ------------
expect_ok renc env config
expect_out "cmk-limit 25"
n=$(renc env list --json | jq '[.[] | select(.policy=="cmk")] | length')
i=0
while [ "$n" -lt 25 ]; do
  i=$((i + 1))
  renc env create "c$i" >/dev/null && renc env set-policy "c$i" --cmk local:cmk-other >/dev/null ||
    fail "making cmk environment c$i"
  n=$((n + 1))
done
expect_ok renc env create one-too-many
expect_exit 1 renc env set-policy one-too-many --cmk local:cmk-other
expect_msg "25 environments already use a customer-managed key" "limit is 25"
expect_ok renc env show one-too-many --json
check "the refused environment stays mmk" test "$(jq -r .policy "$WORK/out")" = mmk
expect_ok renc env set-policy one-too-many --byok local:byok-prod
expect_ok renc env config --cmk-limit 26
expect_ok renc env set-policy one-too-many --cmk local:cmk-other

finish
