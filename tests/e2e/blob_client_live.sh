#!/usr/bin/env bash
# tests/e2e/blob_client_live.sh DRIVER — the blob client (azure/blob.h)
# against Azurite: starts azurite-blob (npm azurite@3.37.0, memory only, a
# free port, telemetry off) in a temporary folder, makes an account SAS with
# Python's hmac from the dev account's published key, and runs DRIVER
# (tests/e2e/blob_live.c).  Azurite comes from tests/e2e/azlib.sh (the pinned
# lock file, the shared npm cache); exit 77 (skipped, saying why) without
# node, npm or the npm registry.
set -uo pipefail
driver=${1:?usage: blob_client_live.sh DRIVER}
driver=$(cd "$(dirname "$driver")" && pwd)/$(basename "$driver")
skip() { echo "SKIP: $*"; exit 77; }

command -v python3 >/dev/null || skip "python3 is needed (the SAS)"
# Azurite from the pinned lock file, installed once into the shared cache and
# started on a free port (tests/e2e/azlib.sh); lib.sh gives it $WORK.
: "${RENC_BIN:?RENC_BIN must name the reencrypt binary}"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/azlib.sh"
az_setup || exit $?
az_start || { echo "FAIL: Azurite did not start"; exit 1; }
port=$AZ_PORT

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
[ $rc -eq 0 ] || { echo "FAIL: blob_live exited $rc; Azurite's log:"; tail -20 "$AZ_LOG"; }
exit $rc
