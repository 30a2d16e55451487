#!/usr/bin/env bash
# tests/e2e/test_blob_env.sh — an environment whose data root is a blob
# storage container (Azurite from npm, tests/e2e/azlib.sh), with Microsoft's
# JavaScript client (@azure/storage-blob) as the independent side.
#
# Covered: `env create ID --data URL` (the catalog keeps the URL; a URL with
# a SAS is refused, unprinted, and nothing is recorded), `env show` / `env
# list` (text and JSON) counting blobs and backups read through the store,
# `run --env` moving every blob of the container's ID/ prefix to the
# environment's key (each blob then downloaded by the SDK and opened by the
# independent reader, renc_check.py, under that key alone), `verify --env`,
# `put` into the container (the [header][records] block layout, --replace),
# `inspect` / `decrypt` / `encrypt` of one blob by URL (a SAS-only decrypt
# among them), `status --env`, `restore` and `restore-check` of a backup by
# URL, `copy` and `copy-check` both ways between the container and a local
# environment (a source that does not open leaves the other side as it
# was), `env reset` deleting the environment's blobs and backups only, and
# a local environment beside it.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/azlib.sh"

az_e2e_begin
C=envs
ROOT=$AZ_URL_BASE/$C

expect_ok renc keys create old --type aes256
ref_of() { echo "local:$1/$(renc keys list --json 2>/dev/null | jq -r --arg n "$1" '.[] | select(.name == $n) | .current')"; }
OLD=$(ref_of old)
[ -n "$OLD" ] || { fail "keys list gives the current version of old"; finish; }

# ---- env create --data URL ------------------------------------------------------
section "env create --data URL"
expect_ok az_sdk mkcontainer "$C"
SAS=$(az_sdk sas "$C" racwdl)
run renc env create sas1 --data "$ROOT?$SAS"
check "a data root with a SAS is refused" [ "$RC" = 2 ]
check "the refusal says where the SAS goes" grep -q AZURE_STORAGE_SAS_TOKEN "$WORK/err"
no_sig() { ! grep -qs "sig=" "$WORK/out" "$WORK/err"; }
check "the refusal does not print the SAS" no_sig
run renc env show sas1
check "nothing is recorded for it" [ "$RC" != 0 ]
run renc env create cloud --data "$ROOT/"
check "env create --data URL exits 0" [ "$RC" = 0 ]
check "it says where the data is" grep -qF "data in $ROOT/cloud" "$WORK/out"
expect_ok renc env create loc
check "a local environment keeps DATA/<id>" [ -d "$RENC_HOME/data/loc/blobs" ]
check "no local folder is made for the container's" [ ! -e "$RENC_HOME/data/cloud" ]
run renc env show cloud
check "env show names the data root" grep -qF "data root     $ROOT " "$WORK/out"
expect_ok renc env create empty --data "$AZ_URL_BASE/nocontainer"
run renc env show empty --json
check "an environment whose container is not made yet has nothing" \
  [ "$(jq -r '"\(.status),\(.blobs.count),\(.backups.count)"' "$WORK/out")" = encrypted,0,0 ]
run renc env show loc --json
check "a local environment's data_root is null" [ "$(jq -r .data_root "$WORK/out")" = null ]

# ---- the data: sealed by the independent writer, uploaded by the SDK -----------
section "corpus"
mkdir -p corpus
SPEC=$WORK/seal.spec
: >"$SPEC"
for i in $(seq 1 6); do
  printf 'corpus/b%02d.renc\t%s\t%d\n' "$i" "$OLD" $((i * 7919 % 90000)) >>"$SPEC"
done
printf 'corpus/big.renc\t%s\t%d\n' "$OLD" $((9 * 1024 * 1024 + 3)) >>"$SPEC"
printf 'corpus/bk1.renc\t%s\t%d\n' "$OLD" 40000 >>"$SPEC"
renc_check --seal "$SPEC" >seal.out || { fail "renc_check --seal"; finish; }
EXPECT=$WORK/expect.tsv # NAME<TAB>sha256 of the plaintext, under cloud/
: >"$EXPECT"
while IFS=$'\t' read -r name sum; do
  case $name in
    bk*) dest=backups/2026/$name ;;
    *) dest=blobs/d/$name ;;
  esac
  expect_ok az_sdk upload "$C" "cloud/$dest" "corpus/$name"
  printf '%s\t%s\n' "$dest" "$sum" >>"$EXPECT"
done < <(sed 's#^corpus/##' seal.out)
echo "not a RENC blob" >corpus/readme.txt
expect_ok az_sdk upload "$C" cloud/blobs/readme.txt corpus/readme.txt
expect_ok az_sdk upload "$C" other/blobs/x.renc corpus/b01.renc
NB=$(grep -c '^blobs/' "$EXPECT")

run renc env show cloud --json
J=$WORK/out
check "env show --json has the data root" [ "$(jq -r .data_root "$J")" = "$ROOT" ]
check "the blobs in the container are counted ($NB + 1)" [ "$(jq -r .blobs.count "$J")" = $((NB + 1)) ]
check "the backup is counted" [ "$(jq -r .backups.count "$J")" = 1 ]
check "the blobs under the old key are not under the policy key" \
  [ "$(jq -r .not_under_policy_key "$J")" = $((NB + 1)) ]
check "the file that is not RENC is unreadable" [ "$(jq -r .unreadable "$J")" = 1 ]
check "its path is its URL" \
  [ "$(jq -r '.unreadable_paths[0]' "$J")" = "$ROOT/cloud/blobs/readme.txt" ]
check "the status is warning" [ "$(jq -r .status "$J")" = warning ]
run renc env list
check "env list names the data root" grep -qE "^cloud .* $ROOT\$" "$WORK/out"
check "env list: a local one has -" grep -qE "^loc .* -\$" "$WORK/out"

# ---- run --env, verify --env ------------------------------------------------------
section "run --env"
MMK=$(ref_of service-mmk)
run renc run --env cloud --progress none
check "run --env over the container exits 0" [ "$RC" = 0 ]
check "run --env names the environment" grep -q "environment cloud" "$WORK/out"
dl=$(mktemp -d "$WORK/dl.XXXXXX")
az_sdk download-prefix "$C" cloud/ "$dl" >/dev/null || fail "download cloud/"
bad=$(cut -f1 "$EXPECT" | sed "s#^#$dl/#" | renc_check --only "$MMK" --list /dev/stdin |
  jq -r '[.path, .status, (.sha256 // "")] | @tsv' |
  sed "s#^$dl/##" | sort | join -t $'\t' - <(sort "$EXPECT") |
  awk -F'\t' '$2 != "ok" || $3 != $4 { print $1 ": " $2 }')
check "every blob and backup opens under $MMK to its plaintext${bad:+ ($bad)}" [ -z "$bad" ]
check "the blob outside the environment is untouched" \
  cmp -s <(az_sdk download "$C" other/blobs/x.renc /dev/stdout) corpus/b01.renc
run renc env show cloud --json
check "after the run nothing is off the policy key" [ "$(jq -r .not_under_policy_key "$J")" = 0 ]
check "the last run is recorded" [ "$(jq -r .last_run.outcome "$J")" = finished ]
run renc keys versions service-mmk --json
check "keys versions counts the container's blobs and backup under the mmk" \
  [ "$(jq -r '.[].by[] | select(.env == "cloud") | "\(.blobs),\(.backups)"' "$WORK/out")" = "$NB,1" ]
run renc verify --env cloud --progress none
check "verify --env over the container exits 0" [ "$RC" = 0 ]
run renc env show loc
check "the local environment is still shown" [ "$RC" = 0 ]
# ---- put into the container ----------------------------------------------------
section "put"
mkdir -p in/sub
head -c $((9 * 1024 * 1024 + 77)) /dev/urandom >in/sub/large.bin
echo "hello" >in/sub/small.txt
run renc put --env cloud in
check "put into the container exits 0" [ "$RC" = 0 ]
check "put says where" grep -qF "$ROOT/cloud/blobs" "$WORK/out"
for f in large.bin small.txt; do
  dst=$WORK/got.$f
  az_sdk download "$C" "cloud/blobs/in/sub/$f" "$dst" >/dev/null || fail "download $f"
  got=$(renc_check --only "$MMK" --list <(echo "$dst") | jq -r .sha256)
  check "$f opens under $MMK alone to its plaintext" \
    [ "$got" = "$(sha256sum <"in/sub/$f" | cut -d' ' -f1)" ]
done
nblk=$(az_sdk blocks "$C" cloud/blobs/in/sub/large.bin | jq length)
check "the large blob is laid out as [header][records...] blocks ($nblk)" [ "$nblk" -ge 4 ]
hdr=$(az_sdk blocks "$C" cloud/blobs/in/sub/large.bin | jq '.[0].size')
check "its first block is the header alone ($hdr bytes)" [ "$hdr" -lt 65536 ]
big=$(az_sdk blocks "$C" cloud/blobs/in/sub/large.bin | jq '[.[].size] | max')
check "no block is over the 4 MiB chunk ($big)" [ "$big" -le $((4 * 1024 * 1024)) ]
run renc put --env cloud in
check "put of a name the environment has is refused" [ "$RC" != 0 ]
check "the refusal names --replace" grep -q -- --replace "$WORK/err"
echo "hello again" >in/sub/small.txt
run renc put --env cloud --replace in
check "put --replace exits 0" [ "$RC" = 0 ]
az_sdk download "$C" cloud/blobs/in/sub/small.txt "$WORK/got.small2" >/dev/null
check "the blob is replaced" \
  [ "$(renc_check --only "$MMK" --list <(echo "$WORK/got.small2") | jq -r .sha256)" = \
    "$(sha256sum <in/sub/small.txt | cut -d' ' -f1)" ]
run renc env show cloud --json
check "env show counts the put blobs" [ "$(jq -r .blobs.count "$J")" = $((NB + 3)) ]
check "the history has the put" [ "$(jq -r '[.history[] | select(.action == "put")] | length' "$J")" = 2 ]
run renc plan "$ROOT/cloud" --json
check "plan: the put blobs rewrap header-only" [ "$(jq -r .rewrap_header_only "$WORK/out")" -ge 2 ]

# ---- one blob by URL: inspect, decrypt, encrypt ----------------------------------
section "inspect / decrypt / encrypt by URL"
B=$ROOT/cloud/blobs/in/sub/large.bin
run renc inspect "$B"
check "inspect URL exits 0" [ "$RC" = 0 ]
check "inspect URL names the blob" [ "$(jq -r .file "$WORK/out")" = "$B" ]
check "inspect URL gives its slot" [ "$(jq -r '.slots[0].ref' "$WORK/out")" = "$MMK" ]
check "inspect URL gives its name" [ "$(jq -r .context.name "$WORK/out")" = in/sub/large.bin ]
run renc decrypt "$B" "$WORK/large.out"
check "decrypt URL exits 0" [ "$RC" = 0 ]
check "decrypt URL gives the plaintext" cmp -s "$WORK/large.out" in/sub/large.bin
run renc decrypt "$ROOT/cloud/blobs/none" "$WORK/none.out"
check "decrypt of a missing blob fails" [ "$RC" != 0 ]
check "and leaves no output" [ ! -e "$WORK/none.out" ]
run renc inspect "$ROOT/cloud/blobs/"
check "inspect of a folder URL is a usage error" [ "$RC" = 2 ]
E=$ROOT/loose/one.renc
run renc encrypt --env cloud --key "$OLD" in/sub/large.bin "$E"
check "encrypt IN URL exits 0" [ "$RC" = 0 ]
az_sdk download "$C" loose/one.renc "$WORK/one.renc" >/dev/null
check "the independent reader opens it under $OLD" \
  [ "$(renc_check --only "$OLD" --list <(echo "$WORK/one.renc") | jq -r .sha256)" = \
    "$(sha256sum <in/sub/large.bin | cut -d' ' -f1)" ]
nblk=$(az_sdk blocks "$C" loose/one.renc | jq length)
check "it is laid out as [header][records...] blocks ($nblk)" [ "$nblk" -ge 4 ]
SAS=$(az_sdk sas "$C" racwdl)
run env -u AZURE_STORAGE_CONNECTION_STRING "$RENC_BIN" decrypt --state "$STATE" "$E?$SAS" "$WORK/one.out"
check "decrypt URL?SAS with no other credential exits 0" [ "$RC" = 0 ]
check "its message has no SAS" no_sig
check "it gives the plaintext" cmp -s "$WORK/one.out" in/sub/large.bin

# ---- backup create of the container's environment ----------------------------------
section "backup create"
run renc backup create --env cloud --name bk2
check "backup create stops at a blob that is not RENC" [ "$RC" = 1 ]
expect_ok az_sdk delete "$C" cloud/blobs/readme.txt
run renc backup create --env cloud --name bk2
check "backup create of the container's environment exits 0" [ "$RC" = 0 ]
check "it says where" grep -qF "cloud/backups/bk2" "$WORK/out"
run renc backup create --env cloud --name bk2
check "a backup of that name is not replaced" [ "$RC" != 0 ]
az_sdk download "$C" cloud/backups/bk2 "$WORK/bk2" >/dev/null || fail "download bk2"
run renc restore-check "$WORK/bk2" --target cloud --json
check "the backup validates under the environment's keys" [ "$(jq -r .valid "$WORK/out")" = true ]
check "it holds every blob ($((NB + 2)))" [ "$(jq -r .blobs "$WORK/out")" = $((NB + 2)) ]
nblk=$(az_sdk blocks "$C" cloud/backups/bk2 | jq length)
check "the backup is laid out as blocks ($nblk)" [ "$nblk" -ge 2 ]
run renc env show cloud --json
check "env show counts the new backup" [ "$(jq -r .backups.count "$J")" = 2 ]
check "env show: its history has the backup" \
  [ "$(jq -r '[.history[] | select(.action == "backup")] | length' "$J")" = 1 ]

# ---- restore-check into it (writes nothing there) ---------------------------------
section "restore-check"
expect_ok renc put --env loc in/sub/small.txt
expect_ok renc backup create --env loc --name b1
run renc restore-check "$RENC_HOME/data/loc/backups/b1" --target cloud --json
check "restore-check with a container's environment as target runs ($RC)" [ "$RC" -le 1 ]
check "it gives a verdict" [ "$(jq -r 'has("allowed")' "$WORK/out")" = true ]

# ---- status --env of the container's environment --------------------------------------
section "status --env"
run renc status --env cloud --json
check "status --env finds the run journal of a container's environment ($RC)" [ "$RC" = 0 ]
check "it is the run over the container's $((NB + 2)) blobs and backups" \
  [ "$(jq -r '"\(.state),\(.blobs.total)"' "$WORK/out")" = "finished,$((NB + 2))" ]

# ---- restore, copy, copy-check across the container and a local environment ----------
section "restore / copy"
expect_ok renc keys create cmk1 --type aes256
CMK=$(ref_of cmk1)
expect_ok renc env set-policy cloud --cmk local:cmk1
expect_ok renc env create loc2
expect_ok renc env set-policy loc2 --cmk local:cmk1
expect_ok renc run --env cloud --progress none
listing() { az_sdk list-json "$C" cloud/ | jq -r '"\(.name) \(.etag)"' | sort; }
# A blob the backup holds, deleted: the restore brings it back.
expect_ok az_sdk delete "$C" cloud/blobs/d/b02.renc
run renc restore "$ROOT/cloud/backups/bk2" --target cloud
check "restore of a backup by URL into its own container environment exits 0" [ "$RC" = 0 ]
check "it says what it restored" grep -qE "restore: .*bk2 -> cloud: $((NB + 2)) blobs" "$WORK/out"
opens_cmk() { # NAME EXPECTED-SHA: the container's blob opens under $CMK alone to it
  az_sdk download "$C" "cloud/blobs/$1" "$WORK/one.dl" >/dev/null &&
    [ "$(renc_check --only "$CMK" --list <(echo "$WORK/one.dl") | jq -r .sha256)" = "$2" ]
}
check "the deleted blob is back, under the policy key, with its plaintext" \
  opens_cmk d/b02.renc "$(awk -F'\t' '$1 == "blobs/d/b02.renc" {print $2}' "$EXPECT")"
# Killed among its commits (some blobs new, the rest as they were), the
# same restore again completes it.
expect_ok az_sdk delete "$C" cloud/blobs/d/b05.renc
RENC_FAULT=fsync:4:KILL "$RENC_BIN" restore --state "$STATE" "$ROOT/cloud/backups/bk2" \
  --target cloud >/dev/null 2>&1
killed=$?
check "a restore killed before its 4th commit dies ($killed)" [ "$killed" -ge 128 ]
run renc restore "$ROOT/cloud/backups/bk2" --target cloud
check "the same restore again exits 0" [ "$RC" = 0 ]
check "the blob deleted before it is back with its plaintext" \
  opens_cmk d/b05.renc "$(awk -F'\t' '$1 == "blobs/d/b05.renc" {print $2}' "$EXPECT")"
nblk=$(az_sdk blocks "$C" cloud/blobs/d/big.renc | jq length)
check "a restored big blob is laid out as [header][records...] blocks ($nblk)" [ "$nblk" -ge 3 ]
BSAS=$(az_sdk blob-sas "$C" cloud/backups/bk2 r)
SIG=${BSAS##*sig=}
SIG=${SIG%%&*}
run renc restore-check "$ROOT/cloud/backups/bk2?$BSAS" --target loc2 --json
check "restore-check of a backup by URL (SAS) into another environment of the same key" \
  [ "$RC" = 0 ]
check "it opened every entry ($((NB + 2)))" [ "$(jq -r .blobs "$WORK/out")" = $((NB + 2)) ]
sig_unseen() { [ -n "$SIG" ] && ! grep -qsF "$SIG" "$WORK/out" "$WORK/err"; }
check "its report does not have the SAS's signature" sig_unseen
before=$(listing)
run renc restore "$RENC_HOME/data/loc/backups/b1" --target cloud
check "a restore the rule refuses exits 1" [ "$RC" = 1 ]
check "and writes nothing in the container" [ "$(listing)" = "$before" ]

run renc copy --from cloud --to loc2
check "copy from the container's environment to a local one exits 0" [ "$RC" = 0 ]
bad=""
for f in $(cut -f1 "$EXPECT" | grep '^blobs/'); do
  want=$(awk -F'\t' -v n="$f" '$1 == n {print $2}' "$EXPECT")
  got=$(renc_check --only "$CMK" --list <(echo "$RENC_HOME/data/loc2/$f") | jq -r .sha256)
  [ "$got" = "$want" ] || bad="$bad $f"
done
check "every copied blob opens under $CMK to its plaintext${bad:+ (not:$bad)}" [ -z "$bad" ]
run renc copy-check --from cloud --to loc2 --json
check "copy-check from the container exits 0" [ "$RC" = 0 ]
check "it opened every blob ($((NB + 2)))" [ "$(jq -r .blobs "$WORK/out")" = $((NB + 2)) ]
head -c 300000 /dev/urandom >in/from-local.bin
expect_ok renc put --env loc2 --name fresh/from-local.bin in/from-local.bin
run renc copy --from loc2 --to cloud
check "copy from a local environment into the container's exits 0" [ "$RC" = 0 ]
check "the copied blob opens under $CMK to its plaintext" \
  opens_cmk fresh/from-local.bin "$(sha256sum <in/from-local.bin | cut -d' ' -f1)"
run renc env show cloud --json
check "the history has the two restores and the copy" \
  [ "$(jq -r '[.history[] | select(.action == "restore" or .action == "copy-in")] | length' "$J")" = 3 ]

# A source that does not open: nothing is written on the other side.
cp "$RENC_HOME/data/loc2/blobs/d/b04.renc" "$WORK/t.renc"
printf '\x55' | dd of="$WORK/t.renc" bs=1 seek=$(($(stat -c %s "$WORK/t.renc") - 40)) conv=notrunc 2>/dev/null
expect_ok az_sdk upload "$C" cloud/blobs/zz-tampered.renc "$WORK/t.renc"
before=$(find "$RENC_HOME/data/loc2" -type f -exec sha256sum {} + | sort)
run renc copy --from cloud --to loc2
check "copy of a container with a tampered blob fails" [ "$RC" = 1 ]
check "it names the blob" grep -q "zz-tampered.renc" "$WORK/err"
check "and the local target is unchanged" \
  [ "$(find "$RENC_HOME/data/loc2" -type f -exec sha256sum {} + | sort)" = "$before" ]
cp "$WORK/t.renc" "$RENC_HOME/data/loc2/blobs/d/zz-tampered.renc"
before=$(listing)
run renc copy --from loc2 --to cloud
check "copy into the container from a source with a tampered blob fails" [ "$RC" = 1 ]
check "and commits nothing there" [ "$(listing)" = "$before" ]
rm -f "$RENC_HOME/data/loc2/blobs/d/zz-tampered.renc"

# ---- env reset of the container's environment ------------------------------------------
section "env reset"
run renc env reset cloud
check "env reset without --yes says what it would delete" grep -qF "$ROOT" "$WORK/err"
run renc env reset cloud --yes
check "env reset of a container's environment exits 0" [ "$RC" = 0 ]
check "it says how many blobs it deleted" grep -qE "deleted [0-9]+ blobs" "$WORK/out"
check "nothing is left under cloud/" [ -z "$(az_sdk list "$C" cloud/)" ]
check "the blob outside the environment is still there" \
  cmp -s <(az_sdk download "$C" other/blobs/x.renc /dev/stdout) corpus/b01.renc
run renc env show cloud --json
check "the environment is back on mmk with nothing" \
  [ "$(jq -r '"\(.policy),\(.blobs.count),\(.backups.count)"' "$J")" = mmk,0,0 ]
check "no local folder was made for it" [ ! -e "$RENC_HOME/data/cloud" ]

# ---- a data root that cannot be reached --------------------------------------------------
# keys versions counts every environment's data to say what needs each
# version; with the storage gone it gives no answer rather than a short
# one, and names the environment it could not count.
section "storage unreachable"
az_stop
run renc keys versions service-mmk
check "keys versions fails while an environment's storage is unreachable" [ "$RC" != 0 ]
check "it names the environment and its data root" \
  grep -qF "environment cloud: its data in $ROOT could not be counted" "$WORK/err"
run renc env list
check "env list still lists every environment, and exits 1" [ "$RC" = 1 ]
check "the unreachable one with its counts as ?" grep -qE "^cloud .* \? +\? +$ROOT\$" "$WORK/out"
check "a local one with its counts" grep -qE "^loc .* [0-9]+ +[0-9]+ +-\$" "$WORK/out"
check "and says which could not be read" grep -qF "environment cloud: its data in $ROOT cannot be read" "$WORK/err"
run renc env show cloud
check "env show of it exits 1" [ "$RC" = 1 ]
check "after showing what the catalog knows, and that the data cannot be read" \
  grep -q "data *cannot be read" "$WORK/out"
check "naming it on stderr" grep -qF "environment cloud: its data in $ROOT cannot be read" "$WORK/err"
run renc env list --json
check "env list --json: null counts and the cause for the unreachable one" \
  [ "$(jq -r '.[] | select(.id == "cloud") | "\(.blobs),\(.backups),\(.data_error != null)"' "$WORK/out")" = null,null,true ]
finish
