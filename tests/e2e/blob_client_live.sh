#!/usr/bin/env bash
# tests/e2e/blob_client_live.sh DRIVER — the blob client (azure/blob.h)
# against Azurite: starts azurite-blob (npm azurite@3.37.0, memory only, a
# free port, telemetry off) in a temporary folder, makes an account SAS with
# Python's hmac from the dev account's published key, and runs DRIVER
# (tests/e2e/blob_live.c).  Exit 77 (skipped, saying why) without node, npm
# or the npm registry.  The npm install is cached in RENC_BLOB_NPM_CACHE
# (the build folder's azurite-npm/).  Once tests/e2e/azlib.sh is in the
# tree, its az_setup/az_start can replace the start below.
set -uo pipefail
driver=${1:?usage: blob_client_live.sh DRIVER}
driver=$(cd "$(dirname "$driver")" && pwd)/$(basename "$driver")
cache=${RENC_BLOB_NPM_CACHE:-$(dirname "$driver")/azurite-npm}
skip() { echo "SKIP: $*"; exit 77; }

command -v node >/dev/null && command -v npm >/dev/null || skip "node and npm are needed"
command -v python3 >/dev/null || skip "python3 is needed (the SAS)"
mkdir -p "$cache" && cache=$(cd "$cache" && pwd)
bin=$cache/node_modules/.bin/azurite-blob
if [ ! -x "$bin" ]; then
  mkdir -p "$cache"
  (cd "$cache" && timeout 300 npm install --no-audit --no-fund azurite@3.37.0 >npm.log 2>&1) ||
    skip "npm could not install azurite@3.37.0 (no registry?): see $cache/npm.log"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/renc-blob-live.XXXXXX")
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
(cd "$work" && exec "$bin" --blobHost 127.0.0.1 --blobPort 0 --inMemoryPersistence \
  --disableTelemetry >"$work/azurite.log" 2>&1) &
pid=$!
port=
for _ in $(seq 1 100); do
  port=$(sed -n 's|.*listens on http://127.0.0.1:\([0-9]*\).*|\1|p' "$work/azurite.log" | head -1)
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
[ -n "$port" ] || { echo "FAIL: Azurite did not start:"; cat "$work/azurite.log"; exit 1; }

account=devstoreaccount1
# The emulator's published development key (Azurite's README): not a secret.
key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
base=http://127.0.0.1:$port/$account
export RENC_BLOB_TEST_BASE=$base
export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=$account;AccountKey=$key;BlobEndpoint=$base;"
# An account SAS (version 2019-12-12's string to sign), made apart from
# the client under test.
RENC_BLOB_TEST_SAS=$(KEY=$key ACCOUNT=$account python3 -c '
import base64, hmac, hashlib, os, time, urllib.parse
se = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
f = dict(sv="2019-12-12", ss="b", srt="sco", sp="rwdlac", se=se, spr="https,http")
sts = "\n".join([os.environ["ACCOUNT"], f["sp"], f["ss"], f["srt"], "", f["se"], "",
                 f["spr"], f["sv"], ""])
sig = base64.b64encode(hmac.new(base64.b64decode(os.environ["KEY"]), sts.encode(),
                                hashlib.sha256).digest()).decode()
f["sig"] = sig
print(urllib.parse.urlencode(f, safe=","))')
export RENC_BLOB_TEST_SAS
timeout 60 "$driver"
rc=$?
[ $rc -eq 0 ] || { echo "FAIL: blob_live exited $rc; Azurite's log:"; tail -20 "$work/azurite.log"; }
exit $rc
