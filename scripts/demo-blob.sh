#!/usr/bin/env bash
# The demo's blob storage step (scripts/demo.sh runs it): an environment
# whose data is in a container of Azurite, the Azure Storage emulator from
# npm (pinned in tests/azurite, installed once into the tests' npm cache),
# started on 127.0.0.1 with its data in memory and stopped at the end.
#   scripts/demo-blob.sh BIN CMK-REF BACKUP-TARGET
# Uses RENC_HOME as the demo does.  Exits 77 (having said why) when
# Azurite cannot be had (no npm registry, no Node 20).
set -uo pipefail
cd "$(dirname "$0")/.."
bin=$1 cmk=$2 other=$3
export RENC_BIN=$bin AZ_SDK_DIRECT=1 # the demo needs no SDK server
home=$RENC_HOME
# shellcheck source=../tests/e2e/lib.sh
source tests/e2e/lib.sh
# shellcheck source=../tests/e2e/azlib.sh
source tests/e2e/azlib.sh
export RENC_HOME=$home # the demo's state, not the test library's scratch one
# Not set -e: the libraries' functions test as they go.
az_setup || exit $?
az_start >/dev/null || exit 1
run() { printf '$ reencrypt %s\n' "$*"; "$bin" "$@" || exit 1; }

url=$AZ_URL_BASE/platform
echo "  (Azurite listens on 127.0.0.1:$AZ_PORT; AZURE_STORAGE_CONNECTION_STRING holds its account key)"
mkdir -p "$WORK/plain/invoices"
for i in $(seq 1 40); do head -c $((RANDOM % 65536 + 1)) /dev/urandom >"$WORK/plain/invoices/i$i.pdf"; done
head -c $((8 * 1024 * 1024)) /dev/urandom >"$WORK/plain/ledger.db"
run env create cloud --region eu-west --data "$url"
run put --env cloud "$WORK/plain/invoices" "$WORK/plain/ledger.db"
run env set-policy cloud --cmk "$cmk"
run run --env cloud --progress=none
run backup create --env cloud --name nightly-1
printf '$ reencrypt plan %s --json | jq ...\n' "$url/cloud"
"$bin" plan "$url/cloud" --json | jq -c '{blobs, rewrap_header_only}' || exit 1
run keys rotate "${cmk#local:}" >/dev/null
echo "  (the customer key rotated: a rewrap now uploads one header block per blob)"
run run --env cloud --mode rewrap --progress=none
run restore-check "$url/cloud/backups/nightly-1" --target "$other"
run env show cloud
