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
# among them), `restore-check` with such a target, the commands not there
# yet refused without touching DATA/, and a local environment beside it.
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
run renc restore "$RENC_HOME/data/loc/backups/b1" --target cloud
check "restore into it is refused for now" grep -q "blob storage" "$WORK/err"

run renc env reset cloud --yes
check "env reset of a container's environment is refused" [ "$RC" = 1 ]
echo data >plain.txt
run renc copy --from cloud --to loc
check "copy from it is refused, not done locally" [ "$RC" = 1 ]
check "no local folder was made for it" [ ! -e "$RENC_HOME/data/cloud" ]
finish
