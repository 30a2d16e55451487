#!/usr/bin/env bash
# tests/e2e/test_blob_run.sh — `run`, `plan` and `verify` of the real binary
# on an Azure Blob Storage container (Azurite from npm, tests/e2e/azlib.sh),
# with Microsoft's JavaScript client (@azure/storage-blob) as the
# independent side: it uploads the corpus (with metadata, index tags and
# content headers), and reads back what the tool wrote.
#
# After every run each blob is downloaded by the SDK and opened by the
# independent reader (renc_check.py) under the target key alone, its
# plaintext hash-compared.  Covered: a rewrap of blobs put in one piece
# (rewritten whole, as [header][records] blocks), then a rewrap that moves
# only the header block (bytes counted by the proxy), a rekey, verify,
# plan's header-only count, --out container -> local and local -> container,
# a rekey's requests (no HEAD, no Get Blob Tags: the listing carries them),
# metadata / tags / content type carried over, a blob changed by another
# writer between listing and commit (412: left as the other writer made it,
# picked up by the next run), injected 503 / 500 / 408 / resets ridden
# through, a missing container and refused credentials stopping the run
# with a clear message, and no SAS signature in any output.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/azlib.sh"

az_e2e_begin
bp_start || { echo "FAIL: blob_proxy.py did not start"; exit 1; }
# The tool goes through the proxy (faults, byte counts); the SDK straight.
TOOL_CS=$BP_CONNECTION_STRING
C=data
U=$BP_URL_BASE/$C/env1

expect_ok renc keys create old --type aes256
expect_ok renc keys create new --type aes256
expect_ok renc keys create rsa --type rsa2048
ref_of() { echo "local:$1/$(renc keys list --json 2>/dev/null | jq -r --arg n "$1" '.[] | select(.name == $n) | .current')"; }
OLD=$(ref_of old)
[ -n "$OLD" ] || { fail "keys list gives the current version of old"; finish; }

# ---- the corpus: sealed locally by the independent writer, uploaded by the SDK
section "corpus"
mkdir -p corpus
SPEC=$WORK/seal.spec
: >"$SPEC"
for i in $(seq 1 24); do
  printf 'corpus/s%02d.renc\t%s\t%d\n' "$i" "$OLD" $((i * 2731 % 70000)) >>"$SPEC"
done
printf 'corpus/big1.renc\t%s\t%d\n' "$OLD" $((17 * 1024 * 1024 + 5)) >>"$SPEC"
printf 'corpus/big2.renc\t%s\t%d\n' "$OLD" $((5 * 1024 * 1024)) >>"$SPEC"
printf 'corpus/empty.renc\t%s\t0\n' "$OLD" >>"$SPEC"
renc_check --seal "$SPEC" >seal.out || { fail "renc_check --seal"; finish; }
EXPECT=$WORK/expect.tsv # NAME<TAB>sha256 of the plaintext
sed 's#^corpus/##' seal.out >"$EXPECT"
echo "not a RENC blob" >corpus/readme.txt
expect_ok az_sdk mkcontainer "$C"
while IFS=$'\t' read -r name _; do
  expect_ok az_sdk upload "$C" "env1/$name" "corpus/$name"
done <"$EXPECT"
expect_ok az_sdk upload "$C" "env1/s01.renc" corpus/s01.renc --meta owner=team1 --meta stage=prod \
  --tags env=prod --tags tier=gold --content-type application/x-renc --cache-control no-cache \
  --content-disposition attachment
expect_ok az_sdk upload "$C" env1/readme.txt corpus/readme.txt
expect_ok az_sdk upload "$C" other/outside.renc corpus/s02.renc
NBLOBS=$(wc -l <"$EXPECT")

# cloud_check REF PREFIX: every blob of expect.tsv under PREFIX, downloaded
# by the SDK, opens under REF alone to its original plaintext.
cloud_check() {
  local ref=$1 prefix=$2 dir
  dir=$(mktemp -d "$WORK/dl.XXXXXX")
  az_sdk download-prefix "$C" "$prefix/" "$dir" >/dev/null || { fail "download $prefix"; return 1; }
  local bad
  bad=$(cut -f1 "$EXPECT" | sed "s#^#$dir/#" | renc_check --only "$ref" --list /dev/stdin |
    jq -r '[.path, .status, (.sha256 // "")] | @tsv' |
    sed "s#^$dir/##" | sort | join -t $'\t' - <(sort "$EXPECT") |
    awk -F'\t' '$2 != "ok" || $3 != $4 { print $1 ": " $2 }')
  rm -rf "$dir"
  if [ -n "$bad" ]; then fail "$prefix under $ref: $bad"; return 1; fi
  pass "$prefix: $NBLOBS blobs open under $ref to their plaintext"
}

# props_ok: s01's metadata, tags and content headers as the SDK set them.
props_ok() {
  local p
  p=$(az_sdk props "$C" env1/s01.renc) || return 1
  [ "$(jq -r '.metadata.owner + "," + .metadata.stage' <<<"$p")" = team1,prod ] &&
    [ "$(jq -r '.tags.env + "," + .tags.tier' <<<"$p")" = prod,gold ] &&
    [ "$(jq -r .contentType <<<"$p")" = application/x-renc ] &&
    [ "$(jq -r .cacheControl <<<"$p")" = no-cache ] &&
    [ "$(jq -r .contentDisposition <<<"$p")" = attachment ]
}

export AZURE_STORAGE_CONNECTION_STRING_SDK=$AZURE_STORAGE_CONNECTION_STRING
tool() { AZURE_STORAGE_CONNECTION_STRING=$TOOL_CS renc "$@"; }

# ---- plan: nothing is laid out as blocks yet --------------------------------
section "plan"
run tool plan "$U" --json
check "plan exits 0" [ "$RC" = 0 ]
check "plan counts the RENC blobs" [ "$(jq -r .blobs "$WORK/out")" = "$NBLOBS" ]
check "plan counts the other file" [ "$(jq -r .not_renc "$WORK/out")" = 1 ]
check "plan: no blob can rewrap header-only yet" [ "$(jq -r .rewrap_header_only "$WORK/out")" = 0 ]

# ---- first rewrap: rewritten whole, as blocks -----------------------------------
section "rewrap (first: rewritten whole)"
expect_ok tool run --mode rewrap --to local:new "$U" --progress none
NEW=$(ref_of new)
cloud_check "$NEW" env1
check "metadata, tags and content headers carried over" props_ok
check "the blob outside the prefix is untouched" \
  cmp -s <(az_sdk download "$C" other/outside.renc /dev/stdout) corpus/s02.renc
check "the other file is untouched" \
  cmp -s <(az_sdk download "$C" env1/readme.txt /dev/stdout) corpus/readme.txt
nblk=$(az_sdk blocks "$C" env1/big1.renc | jq length)
check "big1 is laid out as [header][records...] blocks ($nblk)" [ "$nblk" -ge 3 ]
run tool plan "$U" --json
# Blobs over 256 KiB are laid out as [header][records...] blocks; smaller
# ones are one Put Blob (a rewrap of them is one request either way).
NLARGE=$(cut -f1 "$EXPECT" | while read -r n; do [ "$(stat -c %s "corpus/$n")" -gt 262144 ] && echo "$n"; done | wc -l)
check "plan: the $NLARGE blobs over 256 KiB now rewrap header-only" \
  [ "$(jq -r .rewrap_header_only "$WORK/out")" = "$NLARGE" ]
check "a small blob is one piece (no committed blocks)" \
  [ "$(az_sdk blocks "$C" env1/s03.renc | jq length)" = 0 ]

# ---- second rewrap: only header blocks move ------------------------------------
section "rewrap (header blocks only)"
expect_ok renc keys rotate new
NEW2=$(ref_of new)
bp_clear
expect_ok tool run --mode rewrap --to local:new "$U" --progress none
cloud_check "$NEW2" env1
check "metadata and tags survive a header-only rewrap" props_ok
sent=$(bp_log | jq -s '[.[] | select(.method == "PUT" and (.target | test("/big[12][.]renc"))) | .bytes] | add // 0')
big=$(( $(stat -c %s corpus/big1.renc) + $(stat -c %s corpus/big2.renc) ))
echo "header-only rewrap of big1 and big2 sent $sent bytes for $big bytes of blobs"
check "a header-only rewrap sends a few KiB per large blob, not its records" \
  [ "$sent" -gt 0 -a "$sent" -lt 16384 ]

# ---- rekey, then verify ----------------------------------------------------------
section "rekey + verify"
bp_clear
expect_ok tool run --mode rekey --to local:rsa "$U" --progress none
RSA=$(ref_of rsa)
# The listing (include=metadata,tags) carries each blob's content headers,
# metadata and tags: a small blob's rekey is its GET and its Put Blob.
bp_stats | jq -c 'to_entries | map({(.key): .value.requests}) | add' >rekey-requests.json
echo "rekey of $NBLOBS RENC blobs (+1 other, $NLARGE large): requests $(cat rekey-requests.json)"
req() { jq -r --arg k "$1" '.[$k] // 0' rekey-requests.json; }
check "a rekey sends no HEAD per blob ($(req 'HEAD -'))" [ "$(req 'HEAD -')" = 0 ]
check "a rekey sends no Get Blob Tags ($(req 'GET tags'))" [ "$(req 'GET tags')" = 0 ]
check "a rekey puts each small blob once ($(req 'PUT -') Put Blob)" \
  [ "$(req 'PUT -')" = $((NBLOBS - NLARGE)) ]
cloud_check "$RSA" env1
expect_ok tool verify "$U" --progress none
check "props after a rekey" props_ok

# ---- --out: container -> local, local -> container -------------------------------
section "--out"
expect_ok tool run --mode rewrap --to local:new "$U" --out "$WORK/mirror" --progress none
bad=$(cut -f1 "$EXPECT" | sed "s#^#$WORK/mirror/#" | renc_check --only "$NEW2" --list /dev/stdin |
  jq -r 'select(.status != "ok") | .path')
check "container -> local mirror opens under new ($bad)" [ -z "$bad" ]
check "the source container still opens under rsa" cloud_check "$RSA" env1
expect_ok tool run --mode rekey --to local:new "$WORK/corpus" --out "$BP_URL_BASE/$C/env2" --progress none
cloud_check "$NEW2" env2

# ---- a blob changed by another writer between listing and commit --------------
section "changed during the run (412)"
bp_clear
printf 'another writer\n' >other.bin
# s05 is small (its commit is one Put Blob), big2 is laid out as blocks (its
# commit is a Put Block List): another writer gets in before each.
bp_rule '{"action": "overwrite", "method": "PUT", "match": "env1/s05\\.renc$"}' >/dev/null
bp_rule '{"action": "overwrite", "method": "PUT", "match": "env1/big2\\.renc\\?.*comp=blocklist"}' >/dev/null
run tool run --mode rekey --to local:old "$U" --progress none
check "the run fails (exit 1) when blobs changed under it" [ "$RC" = 1 ]
expect_msg "s05.renc" "changed"
expect_msg "big2.renc" "changed"
check "the other writer's version of s05 is left as it made it" \
  cmp -s <(az_sdk download "$C" env1/s05.renc /dev/stdout) other.bin
check "the other writer's version of big2 is left as it made it" \
  cmp -s <(az_sdk download "$C" env1/big2.renc /dev/stdout) other.bin
bp_clear
# The next run picks it up: not RENC now, counted as such; the rest is done.
run tool run --mode rekey --to local:old "$U" --progress none
check "the next run finishes" [ "$RC" = 0 ]
az_sdk upload "$C" env1/s05.renc corpus/s05.renc >/dev/null
az_sdk upload "$C" env1/big2.renc corpus/big2.renc >/dev/null
expect_ok tool run --mode rekey --to local:old "$U" --progress none
cloud_check "$OLD" env1

# ---- faults ridden through ---------------------------------------------------
section "503 / 500 / 408 / resets"
bp_clear
bp_rule '{"action": "error", "method": "GET", "status": 503, "times": 3}' >/dev/null
bp_rule '{"action": "error", "method": "PUT", "match": "comp=block&", "status": 500, "times": 3}' >/dev/null
bp_rule '{"action": "error", "method": "PUT", "match": "comp=blocklist", "status": 408, "times": 2}' >/dev/null
bp_rule '{"action": "reset", "method": "GET", "skip": 5, "times": 2}' >/dev/null
bp_rule '{"action": "delay", "method": "HEAD", "seconds": 1, "times": 2}' >/dev/null
expect_ok tool run --mode rekey --to local:new "$U" --progress none
cloud_check "$NEW2" env1
bp_clear

# ---- what stops a run ---------------------------------------------------------
section "missing container, refused credentials, SAS kept secret"
run tool run --mode rekey --to local:old "$BP_URL_BASE/nosuch" --progress none
check "a missing container fails the run" [ "$RC" = 1 ]
expect_msg "nosuch" "container does not exist"
BADKEY=$(printf 'x%.0s' $(seq 1 64) | base64 -w0)
run env AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$BADKEY;BlobEndpoint=$BP_ENDPOINT;" \
  "$RENC_BIN" run --state "$STATE" --mode rekey --to local:old "$U" --progress none
check "refused credentials fail the run" [ "$RC" = 1 ]
expect_msg "refused the credentials"
SAS=$(az_sdk sas "$C" racwdl 1)
SIG=$(sed -n 's/.*sig=\([^&]*\).*/\1/p' <<<"$SAS")
run env -u AZURE_STORAGE_CONNECTION_STRING "$RENC_BIN" run --state "$STATE" --mode rekey --to local:new \
  "$BP_URL_BASE/$C/env1?$SAS" --progress none
check "a SAS in the URL is enough to run" [ "$RC" = 0 ]
absent() { ! grep -rqF -- "$@"; }
SIGD=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.unquote(sys.argv[1]))' "$SIG")
check "no output names the decoded SAS signature" absent "$SIGD" "$WORK/out" "$WORK/err"
check "no state file holds the decoded SAS signature" absent "$SIGD" "$STATE"
check "no output names the SAS signature" absent "$SIG" "$WORK/out" "$WORK/err"
check "no state file holds the SAS signature" absent "$SIG" "$STATE"
cloud_check "$NEW2" env1

# ---- HTTPS, with a private CA (--ca-file / RENC_CA_FILE) ------------------------
section "https"
HTTP_CS=$AZURE_STORAGE_CONNECTION_STRING
az_start --https || { fail "Azurite over HTTPS did not start"; finish; }
expect_ok az_sdk mkcontainer "$C"
expect_ok az_sdk upload "$C" tls/s01.renc corpus/s01.renc
expect_ok az_sdk upload "$C" tls/big2.renc corpus/big2.renc
run renc run --mode rekey --to local:new "$AZ_URL_BASE/$C/tls" --progress none
check "without the test CA the TLS handshake is refused" [ "$RC" = 1 ]
expect_msg "could not be reached"
run env RENC_CA_FILE="$AZ_CA" "$RENC_BIN" run --state "$STATE" --mode rekey --to local:new \
  "$AZ_URL_BASE/$C/tls" --progress none
check "with --ca-file's CA the run over HTTPS finishes" [ "$RC" = 0 ]
mkdir -p tls
az_sdk download "$C" tls/big2.renc tls/big2.renc >/dev/null
tls_ok() { renc_check --only "$NEW2" tls/big2.renc | jq -e 'select(.status == "ok")' >/dev/null; }
check "the blob rekeyed over HTTPS opens under new" tls_ok
AZURE_STORAGE_CONNECTION_STRING=$HTTP_CS

# ---- Microsoft Entra: a bearer token from the token endpoint -------------------
# The key vault's test double issues the tokens (as login.microsoftonline.com
# would: iss https://sts.windows.net/TENANT/, aud the scope's resource), and
# Azurite with --oauth basic checks them on every request (HTTPS only).
section "Entra token"
. "$RENC_TESTS_DIR/vault/vaultlib.sh"
if vault_start "$WORK/vault" --resource https://storage.azure.com >/dev/null; then
  az_start --https --oauth basic || { fail "Azurite with --oauth basic did not start"; finish; }
  expect_ok az_sdk mkcontainer "$C"
  expect_ok az_sdk upload "$C" entra/s03.renc corpus/s03.renc
  cat "$AZ_CA" "$VAULT_CA" >both-ca.pem
  run env -u AZURE_STORAGE_CONNECTION_STRING RENC_CA_FILE="$WORK/both-ca.pem" \
    "$RENC_BIN" run --state "$STATE" --mode rekey --to local:new "$AZ_URL_BASE/$C/entra" --progress none
  check "a run with only an Entra token (client secret) finishes" [ "$RC" = 0 ]
  check "the token endpoint issued the token" \
    grep -q "token" "$VAULT_LOG"
  mkdir -p entra
  az_sdk download "$C" entra/s03.renc entra/s03.renc >/dev/null
  entra_ok() { renc_check --only "$NEW2" entra/s03.renc | jq -e 'select(.status == "ok")' >/dev/null; }
  check "the blob rekeyed with an Entra token opens under new" entra_ok
  run env -u AZURE_STORAGE_CONNECTION_STRING -u AZURE_CLIENT_SECRET_FILE RENC_CA_FILE="$WORK/both-ca.pem" \
    AZURE_CLIENT_SECRET=wrong "$RENC_BIN" run --state "$STATE" --mode rekey --to local:old \
    "$AZ_URL_BASE/$C/entra" --progress none
  check "a refused client secret fails the run (exit 1)" [ "$RC" = 1 ]
  expect_msg "refused the credentials"
else
  fail "the token endpoint (tests/vault/vault_server.py) did not start"
fi

finish
