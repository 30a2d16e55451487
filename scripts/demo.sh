#!/usr/bin/env bash
# The main job on embedded defaults: sets up, builds, then shows what the tool
# does with a local keyring and a local data directory.
#   scripts/demo.sh            (state and data under ./demo, made anew)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
dir=$(scripts/build.sh release | tail -n 1)
bin=$PWD/$dir/reencrypt/reencrypt

demo=${RENC_DEMO_DIR:-$PWD/demo}
rm -rf "$demo"
mkdir -p "$demo/plain" "$demo/data" "$demo/opened"
export RENC_HOME=$demo/state
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ reencrypt %s\n' "$*"; "$bin" "$@"; }

step "A local keyring under $RENC_HOME/keyring: a service key (AES-256) and a customer key (RSA-3072)"
run keys create mmk --type aes256
run keys create customer --type rsa3072
run keys list

step "Sample plaintext of different sizes"
head -c 0 /dev/zero > "$demo/plain/empty.bin"
head -c 1000 /dev/urandom > "$demo/plain/small.bin"
head -c $((3 * 1024 * 1024 + 17)) /dev/urandom > "$demo/plain/medium.bin"
seq 1 400000 > "$demo/plain/log.txt"   # compressible text
ls -l "$demo/plain"

step "Seal each into a RENC v1 blob (AES-256-GCM records under a fresh DEK, wrapped by the key)"
run encrypt --env env-a --key local:mmk "$demo/plain/empty.bin" "$demo/data/empty.renc"
run encrypt --env env-a --key local:mmk "$demo/plain/small.bin" "$demo/data/small.renc"
run encrypt --env env-a --key local:customer --segment-size 256K "$demo/plain/medium.bin" "$demo/data/medium.renc"
seq 1 400000 | "$bin" encrypt --env env-a --key local:mmk --key local:customer --compress - "$demo/data/log.renc"
echo "(log.txt sealed from stdin, compressed, with two key slots)"
ls -l "$demo/data"

step "Inspect a header (no key needed)"
run inspect "$demo/data/log.renc"

step "Open every blob (each record verified) and compare with the original"
for f in empty small medium; do
  run decrypt "$demo/data/$f.renc" "$demo/opened/$f.bin"
  cmp "$demo/plain/$f.bin" "$demo/opened/$f.bin" && echo "  $f: identical"
done
run decrypt "$demo/data/log.renc" "$demo/opened/log.txt"
cmp "$demo/plain/log.txt" "$demo/opened/log.txt" && echo "  log: identical"

step "Rotate the service key; old blobs still open under version 1, new ones use version 2"
run keys rotate mmk
run encrypt --env env-a --key local:mmk "$demo/plain/small.bin" "$demo/data/small-v2.renc"
"$bin" inspect "$demo/data/small-v2.renc" | grep '"ref"'
run decrypt "$demo/data/small.renc" "$demo/opened/small-again.bin"

step "Revoke the customer key: its blob can no longer be opened, and nothing is written"
run keys revoke customer
if run decrypt "$demo/data/medium.renc" "$demo/opened/medium-revoked.bin"; then
  echo "unexpected: opened under a revoked key" >&2; exit 1
fi
ls "$demo/opened/medium-revoked.bin" 2>/dev/null || echo "  (no output file left behind)"
echo "  the two-slot log blob still opens through its mmk slot:"
run decrypt "$demo/data/log.renc" "$demo/opened/log-again.txt"
run keys restore customer

step "Tamper with one byte of a blob: it is refused, no partial plaintext is left"
cp "$demo/data/medium.renc" "$demo/data/tampered.renc"
printf '\xff' | dd of="$demo/data/tampered.renc" bs=1 seek=500000 conv=notrunc status=none
if run decrypt "$demo/data/tampered.renc" "$demo/opened/tampered.bin"; then
  echo "unexpected: tampered blob opened" >&2; exit 1
fi
ls "$demo/opened/tampered.bin" 2>/dev/null || echo "  (no output file left behind)"

step "A bulk migration: 600 blobs of an environment, sealed under the service key"
mkdir -p "$demo/env-b/blobs/2026/11" "$demo/env-b/backups"
for i in $(seq 1 200); do head -c $((RANDOM % 16384 + 1)) /dev/urandom > "$demo/plain/b$i"; done
head -c $((48 * 1024 * 1024)) /dev/urandom > "$demo/plain/backup.bin"
for i in $(seq 1 200); do
  "$bin" encrypt --env env-b --key local:mmk "$demo/plain/b$i" "$demo/env-b/blobs/2026/11/b$i.renc" >/dev/null
  cp "$demo/env-b/blobs/2026/11/b$i.renc" "$demo/env-b/blobs/b$i-copy1.renc"
  cp "$demo/env-b/blobs/2026/11/b$i.renc" "$demo/env-b/blobs/b$i-copy2.renc"
done
"$bin" encrypt --env env-b --kind backup --key local:mmk "$demo/plain/backup.bin" "$demo/env-b/backups/full.renc" >/dev/null
echo "notes that are not RENC" > "$demo/env-b/README.txt"
run plan "$demo/env-b"

step "Convert the environment to the customer key: rewrap (new header, records untouched)"
run run --to local:customer --mode rewrap --progress=bar --report "$demo/rewrap-report.json" "$demo/env-b"
jq -c '{blobs, mb_per_s, unwraps, dek_cache_hits, wraps}' "$demo/rewrap-report.json"
run plan "$demo/env-b"

step "Run it again: everything already under the target is skipped"
run run --to local:customer --progress=none "$demo/env-b"

step "Rekey (new DEKs, every record re-sealed) under a new version of the customer key"
run keys rotate customer
run run --to local:customer --mode rekey --share-dek 50 --progress=bar "$demo/env-b"

step "A crash in the middle of a run (the test seam kills it at its 20th durability barrier)"
run keys rotate customer
RENC_FAULT=fsync:20:KILL "$bin" run --to local:customer --mode rekey --progress=none "$demo/env-b" \
  && { echo "unexpected: the run was not killed" >&2; exit 1; } || echo "  (killed: exit $?)"
run status
step "Run the same command again: it resumes from its journal"
run run --to local:customer --mode rekey --resume --progress=none "$demo/env-b"

step "Rotate once more: a rewrap rewrites only each blob's header, in place, journaled first"
run keys rotate customer
run run --to local:customer --mode rewrap --progress=none "$demo/env-b"
run status

step "Verify every record of every blob (writes nothing), then open one and compare"
run verify --progress=none "$demo/env-b"
run decrypt "$demo/env-b/backups/full.renc" "$demo/opened/backup.bin"
cmp "$demo/plain/backup.bin" "$demo/opened/backup.bin" && echo "  backup: identical"

step "Done: state in $RENC_HOME, blobs in $demo/data and $demo/env-b"
