#!/usr/bin/env bash
# The main job on embedded defaults: sets up, builds, then tells the whole
# story with a local keyring, a local data directory and the SQLite catalog:
# environments under mmk and byok with data and backups, a switch to a
# customer-managed key and the migration run, a rotation by header rewrap,
# the restore and copy rules saying yes and no, a revoked key locking its
# environments, a crash and resume, an environment whose data is in blob
# storage (Azurite, scripts/demo-blob.sh), and a customer key in a key vault
# (the local test double of the vault, tests/vault).
#   scripts/demo.sh            (state and data under ./demo, made anew)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
dir=$(scripts/build.sh release | tail -n 1)
bin=$PWD/$dir/reencrypt/reencrypt

demo=${RENC_DEMO_DIR:-$PWD/demo}
rm -rf "$demo"
mkdir -p "$demo/plain" "$demo/opened"
export RENC_HOME=$demo/state   # keyring, catalog, journals, and data under it
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ reencrypt %s\n' "$*"; "$bin" "$@"; }
refused() { printf '$ reencrypt %s\n' "$*"; if "$bin" "$@"; then echo "unexpected: allowed" >&2; exit 1; fi; }

step "One blob: seal, inspect (no key needed), open; a tampered copy is refused"
run keys create customer-byok --type aes256
seq 1 200000 > "$demo/plain/log.txt"
run encrypt --env scratch --key local:customer-byok --compress "$demo/plain/log.txt" "$demo/log.renc"
"$bin" inspect "$demo/log.renc" | jq -c '{header_len, segment_size, context, slots: [.slots[].ref]}'
run decrypt "$demo/log.renc" "$demo/opened/log.txt"
cmp "$demo/plain/log.txt" "$demo/opened/log.txt" && echo "  identical"
cp "$demo/log.renc" "$demo/tampered.renc"
printf '\xff' | dd of="$demo/tampered.renc" bs=1 seek=2000 conv=notrunc status=none
refused decrypt "$demo/tampered.renc" "$demo/opened/tampered.txt" || true
ls "$demo/opened/tampered.txt" 2>/dev/null || echo "  (no output file left behind)"

step "Environments: prod and dr under the service-managed key, staging under its own (byok)"
run env create prod --region eu-west
run env create staging --region eu-west
run env create dr --region eu-north
run env set-policy staging --byok local:customer-byok

step "Data: 600 small blobs and a 32 MiB export in prod, a few in staging"
mkdir -p "$demo/plain/orders/2026/11"
for i in $(seq 1 600); do head -c $((RANDOM % 16384 + 1)) /dev/urandom > "$demo/plain/orders/2026/11/o$i.json"; done
head -c $((32 * 1024 * 1024)) /dev/urandom > "$demo/plain/export.bin"
run put --env prod "$demo/plain/export.bin" "$demo/plain/orders"
run put --env staging "$demo/plain/orders/2026/11/o1.json" "$demo/plain/orders/2026/11/o2.json"
run backup create --env prod --name nightly-1.renc
run backup create --env staging --name nightly-1.renc
run env list

step "BYOK to CMK: prod's policy becomes a customer-managed key (RSA-3072)"
run keys create contoso-cmk --type rsa3072
run env set-policy prod --cmk local:contoso-cmk
run env show prod
step "The migration run: every blob and backup of prod under the customer key (journaled, resumable)"
run run --env prod --progress=bar --report "$demo/migration.json"
jq -c '{blobs, mb_per_s, blobs_per_s, unwraps, dek_cache_hits, wraps}' "$demo/migration.json"
run env show prod

step "Key rotation: a new version of the customer key; the old one stays while anything needs it"
run keys rotate contoso-cmk
refused keys disable contoso-cmk/1 || true
run run --env prod --mode rewrap --progress=bar
run keys versions contoso-cmk
run keys disable contoso-cmk/1

step "Restore and copy rules: dr gets the same customer key, staging keeps its own"
run env set-policy dr --cmk local:contoso-cmk
run restore-check "$RENC_HOME/data/prod/backups/nightly-1.renc" --target dr
refused restore-check "$RENC_HOME/data/prod/backups/nightly-1.renc" --target staging || true
run copy-check --from prod --to dr
refused copy-check --from prod --to staging || true
run restore "$RENC_HOME/data/prod/backups/nightly-1.renc" --target dr
run decrypt "$RENC_HOME/data/dr/blobs/export.bin" "$demo/opened/export.bin"
cmp "$demo/plain/export.bin" "$demo/opened/export.bin" && echo "  dr's export.bin: identical to the original"

step "The customer revokes the key: prod and dr are locked, nothing is read or written"
run keys revoke contoso-cmk
run env list
refused run --env prod --progress=none || true
refused put --env dr "$demo/plain/orders/2026/11/o3.json" || true
step "Access restored: the environments unlock"
run keys restore contoso-cmk
run run --env prod --progress=none

step "Rekey under a new version (new DEKs, every record re-sealed); the test seam kills it at its 8th durability barrier"
run keys rotate contoso-cmk
printf '$ RENC_FAULT=fsync:8:KILL reencrypt run --env prod --mode rekey\n'
RENC_FAULT=fsync:8:KILL "$bin" run --env prod --mode rekey --progress=none >/dev/null \
  && { echo "unexpected: the run was not killed" >&2; exit 1; } || echo "  (killed: exit $?)"
run status --env prod
step "The same command again resumes from its journal"
run run --env prod --mode rekey --progress=none
run verify --env prod --progress=none
run env show prod

step "Reverting staging to the service-managed key"
run env set-policy staging --mmk local:service-mmk
run run --env staging --progress=none
run env list

step "A customer key in a key vault: staging moves to it (tests/vault's local test double stands in for the vault)"
source tests/vault/vaultlib.sh
vault_start "$demo/vault" >/dev/null
export RENC_CA_FILE=$VAULT_CA   # the test double's private CA; TLS is always verified
vault_create_key staging-cmk RSA 2048 >/dev/null
run env set-policy staging --cmk "akv:$VAULT_URL/keys/staging-cmk"
run run --env staging --progress=none
vault_create_key staging-cmk RSA 2048 >/dev/null
echo "  (the customer rotates the key at the vault)"
run run --env staging --progress=none
run keys versions "akv:$VAULT_URL/keys/staging-cmk"
vault_stop

# Last: the environment in blob storage outlives its Azurite (stopped by
# demo-blob.sh), so commands that count every environment's data (keys
# versions, env list) would say its data cannot be reached.
step "An environment in blob storage: its data in a container of Azurite (the Azure Storage emulator, on 127.0.0.1)"
rc=0
scripts/demo-blob.sh "$bin" local:contoso-cmk prod || rc=$?
if [ "$rc" = 77 ]; then echo "  (skipped: Azurite could not be installed from npm)"; elif [ "$rc" != 0 ]; then exit "$rc"; fi

step "Done: keyring, catalog, journals and data under $RENC_HOME"
