#!/usr/bin/env bash
# tests/e2e/test_azurite_harness.sh — the blob storage tests' harness, held to
# its word before any test leans on it: Azurite starts over HTTP and HTTPS
# (azlib.sh), Microsoft's client (tests/azurite/sdk.js) writes, lists, reads
# and describes blobs with metadata and tags, a SAS it signs is accepted, and
# the fault proxy (blob_proxy.py) forwards signed requests unchanged and
# injects what it is told: a 503 a raw curl sees and the SDK rides through, an
# overwrite between a read and a conditional commit (412), a reset, a cut
# answer, a delay, and counts of request body bytes.  Last, no server is left
# running.  Skipped (77) without Node.js 20, npm or the npm registry.
source "$(dirname "$0")/lib.sh"
source "$RENC_TESTS_DIR/e2e/azlib.sh"

az_setup || exit $?

C=harness

# json FILE JQ: one value of JSON text in FILE.
json() { jq -r "$2" "$1"; }
# like TEXT GLOB: TEXT matches the shell pattern GLOB.
like() { [[ $1 == $2 ]]; }
# one_of VALUE A B...: VALUE is one of the rest.
one_of() {
  local v=$1 x
  shift
  for x in "$@"; do [ "$v" = "$x" ] && return 0; done
  return 1
}
# redact_err: no SAS signature in $WORK/err (curl -v shows the request line).
redact_err() { sed -i 's/sig=[^& ]*/sig=REDACTED/g' "$WORK/err"; }
# az_via ARGS...: az_sdk through the proxy.
az_via() { AZURE_STORAGE_CONNECTION_STRING=$BP_CONNECTION_STRING az_sdk "$@"; }

# http_code CURLARGS...: curl's HTTP status (000 when none), body in $WORK/body.
http_code() {
  curl -s -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' "$@"
}

# ---- HTTPS --------------------------------------------------------------------
t0=$SECONDS
az_start --https || { fail "Azurite did not start over HTTPS"; finish; }
HTTPS_PID=$AZ_PID HTTPS_ENDPOINT=$AZ_ENDPOINT HTTPS_CA=$AZ_CA HTTPS_CONN=$AZURE_STORAGE_CONNECTION_STRING
check "HTTPS endpoint ($AZ_ENDPOINT)" like "$AZ_ENDPOINT" "https://127.0.0.1:*/devstoreaccount1"
check "a CA file for HTTPS" [ -s "$AZ_CA" ]
code=$(http_code --cacert "$AZ_CA" "$AZ_ENDPOINT?comp=list")
check "curl trusts the CA; an unsigned request is refused (HTTP $code)" [ "$code" = 403 ]
mkdata "$WORK/small" 4096
expect_ok az_sdk mkcontainer "$C"
expect_ok az_sdk upload "$C" tls.bin "$WORK/small"
expect_ok az_sdk download "$C" tls.bin "$WORK/small.back"
expect_same "the SDK over HTTPS reads back what it wrote" "$WORK/small" "$WORK/small.back"

# ---- HTTP: the SDK ------------------------------------------------------------
az_start || { fail "Azurite did not start over HTTP"; finish; }
check "the second server is another one" [ "$AZ_PID" != "$HTTPS_PID" ]
check "HTTP endpoint ($AZ_ENDPOINT)" like "$AZ_ENDPOINT" "http://127.0.0.1:*/devstoreaccount1"
check "no CA over HTTP" [ -z "$AZ_CA" ]
check "the connection string names the endpoint" \
  like "$AZURE_STORAGE_CONNECTION_STRING" "*;BlobEndpoint=$AZ_ENDPOINT;"
echo "servers up after $((SECONDS - t0)) s"

mkdata "$WORK/data" 300000
expect_ok az_sdk mkcontainer "$C"
expect_ok az_sdk mkcontainer "$C"
expect_ok az_sdk upload "$C" dir/a.bin "$WORK/data" --meta encryptiondata='{"x":1}' \
  --meta owner=tests --tags stage=one --tags kind=harness --content-type application/x-renc \
  --cache-control no-cache --content-encoding identity
expect_ok az_sdk upload-blocks "$C" dir/b.bin "$WORK/data" 100000 --meta m=1
expect_ok az_sdk upload "$C" top.bin "$WORK/small"
run az_sdk list "$C"
check "list: every blob, in order" [ "$(tr '\n' ' ' <"$WORK/out")" = "dir/a.bin dir/b.bin top.bin " ]
run az_sdk list "$C" dir/
check "list with a prefix" [ "$(tr '\n' ' ' <"$WORK/out")" = "dir/a.bin dir/b.bin " ]
expect_ok az_sdk download "$C" dir/a.bin "$WORK/a.back"
expect_same "Put Blob reads back" "$WORK/data" "$WORK/a.back"
expect_ok az_sdk download "$C" dir/b.bin "$WORK/b.back"
expect_same "Put Block + Put Block List read back" "$WORK/data" "$WORK/b.back"
expect_ok az_sdk download "$C" dir/a.bin "$WORK/part" --offset 1000 --count 10
check "download to /dev/stdout" cmp -s <(az_sdk download "$C" dir/a.bin /dev/stdout) "$WORK/data"
check "a ranged read" cmp -s "$WORK/part" <(tail -c +1001 "$WORK/data" | head -c 10)

az_sdk props "$C" dir/a.bin >"$WORK/props" || fail "props"
check "props: metadata" [ "$(json "$WORK/props" '.metadata.encryptiondata + "," + .metadata.owner')" = '{"x":1},tests' ]
check "props: tags" [ "$(json "$WORK/props" '.tags.stage + "," + .tags.kind')" = one,harness ]
check "props: content headers" [ "$(json "$WORK/props" '[.contentType, .cacheControl, .contentEncoding, .contentLength] | join(",")')" = application/x-renc,no-cache,identity,300000 ]
ETAG_A=$(json "$WORK/props" .etag)
check "props: a quoted ETag ($ETAG_A)" like "$ETAG_A" '"0x*"'
run az_sdk blocks "$C" dir/b.bin
check "blocks: three committed, 100000 bytes each" [ "$(jq -c '[.[].size]' "$WORK/out")" = '[100000,100000,100000]' ]
check "blocks: ids of equal length" [ "$(jq '[.[].name | length] | unique | length' "$WORK/out")" = 1 ]
expect_exit 1 az_sdk upload "$C" dir/a.bin "$WORK/small" --if-match '"0x1"'
expect_msg 412 ConditionNotMet
expect_exit 1 az_sdk props "$C" nothing.bin
expect_msg 404 BlobNotFound
expect_exit 3 az_sdk exists "$C" nothing.bin

# A container SAS signed by the SDK, used by a raw curl: no key travels.
SAS=$(az_sdk sas "$C" rl 1)
check "a container SAS" like "$SAS" "*&sig=*"
code=$(http_code "$AZ_ENDPOINT/$C?restype=container&comp=list&prefix=dir/&$SAS")
check "curl lists with the SAS (HTTP $code)" [ "$code" = 200 ]
check "  and sees a blob" grep -q '<Name>dir/a.bin</Name>' "$WORK/body"
code=$(http_code "$AZ_ENDPOINT/$C?restype=container&comp=list&${SAS/sig=/sig=A}")
check "a SAS with a bad signature is refused (HTTP $code)" [ "$code" = 403 ]
WSAS=$(az_sdk sas "$C" racwd 1)

# ---- the proxy: forwarding --------------------------------------------------------
bp_start || { fail "blob_proxy.py did not start"; finish; }
mkdata "$WORK/big" 5000000
expect_ok az_via upload-blocks "$C" via/big.bin "$WORK/big" 1048576 --meta via=proxy
expect_ok az_sdk download "$C" via/big.bin "$WORK/big.back"
expect_same "a signed block upload through the proxy arrives whole" "$WORK/big" "$WORK/big.back"
expect_ok az_via download "$C" dir/a.bin "$WORK/a.via"
expect_same "a signed read through the proxy" "$WORK/data" "$WORK/a.via"
run bp_stats
check "stats: 5 Put Block, 5000000 body bytes" \
  [ "$(jq -c '.["PUT block"] | [.requests, .bytes]' "$WORK/out")" = '[5,5000000]' ]

# Keep-alive: two requests on one connection; a chunked body; Expect: 100-continue.
run curl -sv -o /dev/null -o /dev/null "$BP_URL_BASE/$C/dir/a.bin?$SAS" "$BP_URL_BASE/$C/top.bin?$SAS"
redact_err
expect_msg "Re-using existing connection"
check "both answered 200" [ "$(grep -c '^< HTTP/1.1 200' "$WORK/err")" = 2 ]
# Azurite, as Azure, wants a Content-Length on a Put Blob (400 to a chunked
# one): the chunked body must still be read whole, so that the connection
# serves the next request.
bp_clear
run curl -sv -o /dev/null -X PUT -H 'x-ms-blob-type: BlockBlob' -H 'Transfer-Encoding: chunked' \
  --data-binary @"$WORK/small" "$BP_URL_BASE/$C/chunked.bin?$WSAS" \
  --next -s -o "$WORK/next.back" "$BP_URL_BASE/$C/top.bin?$SAS"
redact_err
check "a chunked body is relayed: Azurite's own answer" grep -q '^< HTTP/1.1 400' "$WORK/err"
check "  the connection then serves the next request" grep -q 'Re-using existing connection' "$WORK/err"
expect_same "  which is answered" "$WORK/small" "$WORK/next.back"
check "  the chunked body's 4096 bytes were counted" [ "$(bp_stats_field "PUT -" bytes)" = 4096 ]
mkdata "$WORK/two" 2100000
t1=$(date +%s%N)
code=$(http_code -X PUT -H 'x-ms-blob-type: BlockBlob' -H 'Expect: 100-continue' \
  --data-binary @"$WORK/two" "$BP_URL_BASE/$C/expect.bin?$WSAS")
ms=$((($(date +%s%N) - t1) / 1000000))
check "Expect: 100-continue: the body went up (HTTP $code)" [ "$code" = 201 ]
check "  at once, not after curl's 1 s wait ($ms ms)" [ "$ms" -lt 900 ]

# The proxy in front of the HTTPS server (plain HTTP to its clients); its
# overwrite rule writes with that server's connection string.
AZURE_STORAGE_CONNECTION_STRING=$HTTPS_CONN bp_start "${HTTPS_ENDPOINT%/*}" "$HTTPS_CA" ||
  fail "blob_proxy.py in front of HTTPS did not start"
bp_rule '{"action": "overwrite", "method": "PUT", "match": "/tls\\.bin\\?.*comp=blocklist"}' >/dev/null
ETAG_T=$(AZURE_STORAGE_CONNECTION_STRING=$HTTPS_CONN AZ_CA=$HTTPS_CA az_sdk etag "$C" tls.bin)
expect_exit 1 az_via upload-blocks "$C" tls.bin "$WORK/small" 1024 --if-match "$ETAG_T"
expect_msg 412 ConditionNotMet
expect_ok az_via download "$C" tls.bin "$WORK/tls.via"
check "through the proxy to HTTPS: the other writer's bytes" [ "$(cat "$WORK/tls.via")" = "another writer" ]
bp_start "${AZ_ENDPOINT%/*}" || fail "blob_proxy.py did not start again"

# ---- the proxy: faults ------------------------------------------------------------
bp_clear
bp_rule '{"action": "error", "status": 503, "method": "GET", "match": "comp=list", "times": 1}' >/dev/null
code=$(http_code "$BP_URL_BASE/$C?restype=container&comp=list&$SAS")
check "an injected 503 (HTTP $code)" [ "$code" = 503 ]
check "  with x-ms-error-code" grep -qi '^x-ms-error-code: ServerBusy' "$WORK/headers"
check "  with an Azure error body" grep -q '<Error><Code>ServerBusy</Code><Message>' "$WORK/body"
code=$(http_code "$BP_URL_BASE/$C?restype=container&comp=list&$SAS")
check "  once: the next list passes (HTTP $code)" [ "$code" = 200 ]
bp_rule '{"action": "error", "status": 500, "method": "HEAD", "times": 1}' >/dev/null
code=$(http_code -I "$BP_URL_BASE/$C/top.bin?$SAS")
check "an injected 500 on a HEAD (HTTP $code)" [ "$code" = 500 ]
check "  with x-ms-error-code" grep -qi '^x-ms-error-code: OperationTimedOut' "$WORK/headers"

bp_clear
bp_rule '{"action": "error", "status": 503, "method": "PUT", "match": "/sdk503\\.bin$", "times": 2}' >/dev/null
bp_rule '{"action": "error", "status": 500, "code": "OperationTimedOut", "method": "GET", "match": "/sdk503\\.bin$", "times": 1}' >/dev/null
expect_ok az_via upload "$C" sdk503.bin "$WORK/small"
expect_ok az_via download "$C" sdk503.bin "$WORK/sdk503.back"
expect_same "the SDK rode through two 503s and a 500" "$WORK/small" "$WORK/sdk503.back"
run bp_stats
check "  the proxy answered them: 3 PUT (2 injected), 2 GET (1)" \
  [ "$(jq -c '[.["PUT -"].requests, .["PUT -"].injected, .["GET -"].requests, .["GET -"].injected]' "$WORK/out")" = '[3,2,2,1]' ]

# Another writer between the read and the commit.
bp_clear
ETAG_B=$(az_sdk etag "$C" dir/b.bin)
bp_rule '{"action": "overwrite", "method": "PUT", "match": "/dir/b\\.bin\\?.*comp=blocklist", "data": "the other writer\n"}' >/dev/null
expect_exit 1 az_via upload-blocks "$C" dir/b.bin "$WORK/small" 1024 --if-match "$ETAG_B"
expect_msg 412 ConditionNotMet
ETAG_B2=$(az_sdk etag "$C" dir/b.bin)
check "the blob changed under the commit ($ETAG_B -> $ETAG_B2)" [ "$ETAG_B2" != "$ETAG_B" ]
az_sdk download "$C" dir/b.bin "$WORK/b.other" || fail "download dir/b.bin"
check "  it holds the other writer's bytes" [ "$(cat "$WORK/b.other")" = "the other writer" ]
run bp_log
check "  the log shows the overwrite (201) and the 412" \
  [ "$(jq -sc '[.[] | select(.action == "overwrite") | .overwrite_status, .status, .if_match]' "$WORK/out")" = "[\"201\",412,$(jq -R . <<<"$ETAG_B")]" ]

# A reset, before and after forwarding; a cut answer; a slow one.
bp_clear
bp_rule '{"action": "reset", "method": "GET", "match": "/top\\.bin"}' >/dev/null
run curl -s -o /dev/null -w '%{http_code}' "$BP_URL_BASE/$C/top.bin?$SAS"
check "reset: no answer (curl exit $RC, HTTP $(<"$WORK/out"))" one_of "$RC" 52 56
code=$(http_code "$BP_URL_BASE/$C/top.bin?$SAS")
check "  then the next request passes (HTTP $code)" [ "$code" = 200 ]
bp_rule '{"action": "reset-after", "method": "PUT", "match": "/lost\\.bin"}' >/dev/null
run curl -s -o /dev/null -X PUT -H 'x-ms-blob-type: BlockBlob' --data-binary @"$WORK/small" "$BP_URL_BASE/$C/lost.bin?$WSAS"
check "reset-after: the writer sees no answer (curl exit $RC)" one_of "$RC" 52 56
expect_ok az_sdk exists "$C" lost.bin
bp_rule '{"action": "cut", "method": "GET", "match": "/dir/a\\.bin", "bytes": 1000}' >/dev/null
run curl -s -o "$WORK/cut" "$BP_URL_BASE/$C/dir/a.bin?$SAS"
check "cut: curl sees a short answer (curl exit $RC)" one_of "$RC" 18 56
check "  after 1000 body bytes ($(file_size "$WORK/cut"))" [ "$(file_size "$WORK/cut")" = 1000 ]
bp_rule '{"action": "delay", "seconds": 1.5, "method": "GET", "match": "/top\\.bin"}' >/dev/null
t=$(curl -s -o /dev/null -w '%{time_total}' "$BP_URL_BASE/$C/top.bin?$SAS")
check "delay: a slow answer ($t s)" [ "${t%%.*}" -ge 1 ]

# Byte counts: a new header block and a commit that keeps the records
# sends only the header's bytes (the pattern of a rewrap).
printf 'header one' >"$WORK/hdr1"
printf 'header two!' >"$WORK/hdr2"
mkdata "$WORK/rec" 200000
expect_ok az_sdk stage "$C" rewrap.bin hdr-1 "$WORK/hdr1"
expect_ok az_sdk stage "$C" rewrap.bin rec-1 "$WORK/rec"
expect_ok az_sdk commit "$C" rewrap.bin hdr-1 rec-1
bp_clear
expect_ok az_via stage "$C" rewrap.bin hdr-2 "$WORK/hdr2"
expect_ok az_via commit "$C" rewrap.bin hdr-2 rec-1
run bp_stats
check "stats: one Put Block of 11 bytes" [ "$(jq -c '.["PUT block"] | [.requests, .bytes]' "$WORK/out")" = '[1,11]' ]
check "stats: one small Put Block List" [ "$(jq -c '.["PUT blocklist"] | [.requests, .bytes < 200]' "$WORK/out")" = '[1,true]' ]
check "stats: nothing else" [ "$(jq -c 'keys' "$WORK/out")" = '["PUT block","PUT blocklist"]' ]
expect_ok az_sdk download "$C" rewrap.bin "$WORK/rewrap.back"
check "the blob is the new header and the old records" cmp -s "$WORK/rewrap.back" <(cat "$WORK/hdr2" "$WORK/rec")
run az_sdk blocks "$C" rewrap.bin
check "committed blocks [11, 200000]" [ "$(jq -c '[.[].size]' "$WORK/out")" = '[11,200000]' ]
run bp_rule '{"action": "nonsense"}'
check "a bad rule is refused" [ "$RC" != 0 ]

# ---- nothing left behind ------------------------------------------------------------
pids=("${_AZ_PIDS[@]}")
az_stop
alive=0
for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
check "az_stop stopped ${#pids[@]} processes" [ "$alive" = 0 ]
echo "done after $((SECONDS - t0)) s"
finish
