#!/usr/bin/env bash
# tests/e2e/test_cache.sh — page-cache hygiene: a run drops the pages of
# what it read and wrote once each blob is done (its new version durable),
# so a run over terabytes does not evict everything else the machine
# caches; `--keep-cache` leaves them.  Measured with fincore (util-linux)
# over the processed files: small blobs (the batch path) and big ones (the
# chunk pipeline), rekey in place, rekey to --out (the source too), verify.
# Skips (77) where the kernel keeps files in memory anyway (tmpfs) or
# fincore is missing.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v fincore >/dev/null || { echo "SKIP: fincore (util-linux) is not installed"; exit 77; }
case $(stat -f -c %T "$WORK") in
  tmpfs | ramfs) echo "SKIP: $WORK is on $(stat -f -c %T "$WORK"): its pages are the files"; exit 77 ;;
esac
sanitizer_logs
expect_ok renc keys create a
expect_ok renc keys create b

# cached DIR: the percentage of DIR's files' bytes in the page cache.
cached() {
  local res size
  res=$(find "$1" -type f -print0 | xargs -0 -r fincore --bytes --noheadings --raw -o RES |
    awk '{ s += $1 } END { print s + 0 }')
  size=$(find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
  awk -v r="$res" -v s="$size" 'BEGIN { printf "%d", s ? 100 * r / s : 0 }'
}

# The corpus: 60 small blobs and 2 of 12 MiB, sealed, then read once so
# every page of it is in the cache before each run.
mkdir -p plain src
for i in $(seq 1 60); do head -c $((i * 173 + 9000)) /dev/urandom >"plain/s$i"; done
for i in 1 2; do head -c $((12 * 1024 * 1024 + i)) /dev/urandom >"plain/b$i"; done
for f in plain/*; do renc encrypt --env t --key local:a "$f" "src/$(basename "$f").renc" >/dev/null; done
warm() { cat "$1"/* >/dev/null; }

warm src
check "the sealed corpus starts cached ($(cached src)%)" [ "$(cached src)" -ge 80 ]
run renc run --mode rekey --to local:b --progress none src
check "rekey in place exits 0" [ "$RC" = 0 ]
pct=$(cached src)
check "after a rekey in place, at most 5% of the blobs' bytes are cached ($pct%)" [ "$pct" -le 5 ]

warm src
run renc run --mode rekey --to local:a --progress none --keep-cache src
check "rekey --keep-cache exits 0" [ "$RC" = 0 ]
pct=$(cached src)
check "with --keep-cache most of the new blobs stay cached ($pct%)" [ "$pct" -ge 50 ]

warm src
run renc run --mode rekey --to local:b --progress none src --out out
check "rekey to --out exits 0" [ "$RC" = 0 ]
check "after it, the source is not cached ($(cached src)%)" [ "$(cached src)" -le 5 ]
check "nor the output ($(cached out)%)" [ "$(cached out)" -le 5 ]

warm out
run renc verify --progress none out
check "verify exits 0" [ "$RC" = 0 ]
check "after verify, what it read is not cached ($(cached out)%)" [ "$(cached out)" -le 5 ]

# Still every blob opens to its plaintext.
bad=0
for f in plain/*; do
  renc decrypt "out/$(basename "$f").renc" "$WORK/o" >/dev/null 2>&1 && cmp -s "$WORK/o" "$f" || bad=$((bad + 1))
done
check "every blob of the output opens to its plaintext ($bad not)" [ "$bad" = 0 ]
finish
