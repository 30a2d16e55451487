#!/usr/bin/env bash
# Benchmark of the environment commands against the machine's own ceilings,
# measured in the same run.
#
#   bench/env.sh                          (64 x 8 MiB + 1000 x 16 KiB)
#   BIG_COUNT=8 SMALL_COUNT=200 bench/env.sh     (a quick one)
#
# put (seal), backup create (open + archive + compress + seal), restore-check
# (open + decompress + parse, nothing written), copy-check (open), restore
# and copy (open + seal + stage), and run --env (rekey, then rewrap in place),
# each as MB/s of plaintext; beside them the ceilings: AES-256-GCM on one core
# (openssl speed), reading the corpus (cat) and copying it (cp + sync).
# These commands seal or open several blobs at once on worker threads
# (--threads, default the cores; --memory 256M), as run does; the stage's
# durable batches and renames stay on one thread.
# Results go to stdout and, as JSON, to $RENC_BENCH_OUT (default
# bench-env.json in the current directory).
set -euo pipefail
cd "$(dirname "$0")/.."
BIG_COUNT=${BIG_COUNT:-64}
BIG_MB=${BIG_MB:-8}
SMALL_COUNT=${SMALL_COUNT:-1000}
SMALL_KB=${SMALL_KB:-16}

scripts/bootstrap.sh >/dev/null
dir=$(scripts/build.sh bench | tail -n 1)
R=$PWD/$dir/reencrypt/reencrypt

work=${RENC_BENCH_DIR:-$(mktemp -d /var/tmp/renc-bench-env.XXXXXX)}
trap 'rm -rf "$work"' EXIT
export RENC_HOME=$work/state
out=${RENC_BENCH_OUT:-$PWD/bench-env.json}
say() { printf '%s\n' "$*" >&2; }

mkdir -p "$work/plain/big" "$work/plain/small"
for i in $(seq 1 "$BIG_COUNT"); do head -c $((BIG_MB << 20)) /dev/urandom >"$work/plain/big/b$i"; done
for i in $(seq 1 "$SMALL_COUNT"); do head -c $((SMALL_KB << 10)) /dev/urandom >"$work/plain/small/s$i"; done
sync
bytes=$(du -sb "$work/plain" | cut -f1)
mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')
say "== corpus: $BIG_COUNT x $BIG_MB MiB + $SMALL_COUNT x $SMALL_KB KiB = $mb MB"

# timed NAME CMD...: runs CMD, prints and records its MB/s of plaintext.
declare -A rate
timed() {
  local name=$1 t0 t1 s
  shift
  sync
  t0=$(date +%s.%N)
  "$@" >/dev/null
  t1=$(date +%s.%N)
  s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  rate[$name]=$(awk -v b="$bytes" -v s="$s" 'BEGIN { printf "%.1f", b / 1e6 / s }')
  printf '%-26s %8.3f s  %8.1f MB/s\n' "$name" "$s" "${rate[$name]}"
}

say "== ceilings"
gcm=$(openssl speed -evp aes-256-gcm -seconds 2 -bytes 1048576 2>/dev/null |
  awk 'tolower($1) == "aes-256-gcm" { v = $NF; sub(/k$/, "", v); printf "%.1f", v * 1000 / 1e6 }')
printf '%-26s %17s MB/s\n' "aes-256-gcm, one core" "$gcm"
timed "read (cat)" sh -c "cat $work/plain/big/* $work/plain/small/* >/dev/null"
timed "copy (cp + sync)" sh -c "cp -r $work/plain $work/copy && sync"
rm -rf "$work/copy"

say "== environment commands"
"$R" keys create cmk >/dev/null
for e in prod dr; do
  "$R" env create "$e" >/dev/null
  "$R" env set-policy "$e" --cmk local:cmk >/dev/null
done
timed "put (seal)" "$R" put --env prod "$work/plain/big" "$work/plain/small"
timed "backup create" "$R" backup create --env prod --name b1.renc
bk=$RENC_HOME/data/prod/backups/b1.renc
timed "restore-check" "$R" restore-check "$bk" --target dr
timed "copy-check" "$R" copy-check --from prod --to dr
timed "restore" "$R" restore "$bk" --target dr
timed "copy" "$R" copy --from prod --to dr
"$R" keys rotate cmk >/dev/null
timed "run --env (rekey)" "$R" run --env prod --mode rekey --progress=none
"$R" keys rotate cmk >/dev/null
timed "run --env (rewrap, in place)" "$R" run --env prod --mode rewrap --progress=none
backup_mb=$(awk -v b="$(stat -c %s "$bk")" 'BEGIN { printf "%.1f", b / 1e6 }')
say "backup on disk: $backup_mb MB for $mb MB of plaintext (random data: zstd cannot shrink it)"

{
  printf '{"corpus_mb": %s, "aes_gcm_one_core_mb_s": %s' "$mb" "$gcm"
  for k in "${!rate[@]}"; do printf ', "%s": %s' "$k" "${rate[$k]}"; done
  printf '}\n'
} >"$out"
say "wrote $out"
