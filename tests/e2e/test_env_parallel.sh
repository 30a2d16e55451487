#!/usr/bin/env bash
# tests/e2e/test_env_parallel.sh — put, backup create, restore, copy and
# copy-check on several worker threads (common/workq.h): the same blobs,
# the same output and the same all-or-nothing as one thread; a failure in
# the middle of many blobs in flight names the first failing blob in list
# order and leaves the target as it was, with no temporary; --threads and
# --memory are checked; a restore's big entries stream through the reading
# thread while the small ones are held whole and sealed by the workers.
source "$(dirname "$0")/lib.sh"

DATA=$STATE/data
P=$WORK/plain
mkdir -p "$P/d/sub"
for i in $(seq 1 60); do mkdata "$P/d/f$i" $((i * 977)); done
for i in 1 2 3; do mkdata "$P/d/sub/g$i" $((3 << 20)); done
mkdata "$P/d/big" $((6 << 20))
: >"$P/d/empty"

renc keys create k >/dev/null || fail "keys create"
for e in a b one many; do
  renc env create "$e" >/dev/null && renc env set-policy "$e" --byok local:k >/dev/null ||
    fail "env $e"
done

# plain_ok ENV: every file of $P/d is ENV's blob d/... and opens to it.
plain_ok() {
  local f rel
  while IFS= read -r -d '' f; do
    rel=${f#"$P/"}
    rm -f "$WORK/o"
    renc decrypt "$DATA/$1/blobs/$rel" "$WORK/o" >/dev/null 2>&1 && same "$WORK/o" "$f" ||
      { echo "    $1/$rel does not open to $f" >&2; return 1; }
  done < <(find "$P/d" -type f -print0)
  [ "$(find "$DATA/$1/blobs" -type f | wc -l)" -eq 65 ]
}

expect_exit 2 renc put --env a --threads 0 "$P/d"
expect_msg "--threads must be 1..1024"
expect_exit 2 renc put --env a --memory 1M "$P/d"
expect_msg "--memory must be"
expect_exit 2 renc copy --from a --to b --threads 2 --threads 3
check "refused options wrote nothing" test -z "$(find "$DATA/a/blobs" -type f)"

# ---- put: one thread and four, the same output --------------------------------
expect_ok renc put --env one --threads 1 "$P/d"
sed "s/ one / X /" "$WORK/out" >"$WORK/put.one"
expect_ok renc put --env many --threads 4 --memory 8M "$P/d"
sed "s/ many / X /" "$WORK/out" >"$WORK/put.many"
expect_same "put prints the same with four threads" "$WORK/put.one" "$WORK/put.many"
check "put on four threads: every blob opens to its file" plain_ok many
expect_no_temporaries "put" "$DATA/many"
expect_ok renc put --env a --threads 3 "$P/d"

# ---- a failure among blobs in flight ---------------------------------------------
# A write failing mid-way (the 40th write of the process): nothing is put.
RENC_FAULT=write:40:ENOSPC expect_exit 1 renc put --env b --threads 4 "$P/d"
expect_msg "No space left" "nothing is sealed"
check "a failed parallel put leaves b empty" test -z "$(find "$DATA/b/blobs" -type f)"
expect_no_temporaries "failed put" "$DATA/b"

# Two damaged source blobs: copy names the first in name order, and copies
# nothing; copy-check counts both and names the same first one.
cp -a "$DATA/a/blobs" "$WORK/a.blobs"
flip_byte "$DATA/a/blobs/d/f7" 600
flip_byte "$DATA/a/blobs/d/f50" 600
expect_exit 1 renc copy --from a --to b --threads 4 --memory 8M
expect_msg "d/f50" "nothing was copied into b"
check "the first failing blob in order is named first" \
  test "$(grep -n 'd/f50' "$WORK/err" | head -n1 | cut -d: -f1)" = 1
check "copy names no other blob" test "$(grep -c 'blobs/d/f7' "$WORK/err")" = 0
check "a failed parallel copy leaves b empty" test -z "$(find "$DATA/b/blobs" -type f)"
expect_no_temporaries "failed copy" "$DATA/b"
expect_exit 1 renc copy-check --from a --to b --threads 4 --json
check "copy-check counts both damaged blobs, names the first" \
  jq -e '(.detail | test("^2 of 65 blobs")) and (.detail | test("d/f50"))' "$WORK/out"
rm -rf "$DATA/a/blobs" && cp -a "$WORK/a.blobs" "$DATA/a/blobs"

# ---- copy, backup, restore on workers ----------------------------------------
expect_ok renc copy-check --from a --to b --threads 4 --json
check "copy-check: all 65 open" jq -e '.valid == true and .blobs == 65' "$WORK/out"
expect_ok renc copy --from a --to b --threads 4 --memory 8M
expect_out "65 blobs"
check "copy on four threads: every blob opens to its file" plain_ok b
expect_ok renc backup create --env a --name bk --threads 1
expect_ok renc backup create --env a --name bk4 --threads 4 --memory 8M
check "backup create on four threads: valid for a restore" \
  renc restore-check "$DATA/a/backups/bk4" --target one
renc decrypt "$DATA/a/backups/bk" "$WORK/bk.plain" >/dev/null &&
  renc decrypt "$DATA/a/backups/bk4" "$WORK/bk4.plain" >/dev/null || fail "decrypt the backups"
expect_same "the backup's archive is the same on one thread and four" "$WORK/bk.plain" \
  "$WORK/bk4.plain"
rm -rf "$DATA/one/blobs"/*
# On two threads: the entries of up to 1 MiB are held whole and sealed by
# the workers, the 3 and 6 MiB ones sealed as they are read.
expect_ok renc restore "$DATA/a/backups/bk4" --target one --threads 2 --memory 8M
expect_out "65 blobs"
check "restore on two threads: every blob opens to its file" plain_ok one
rm -rf "$DATA/many/blobs"/*
RENC_FAULT=write:30:EIO expect_exit 1 renc restore "$DATA/a/backups/bk" --target many --threads 4
expect_msg "nothing was restored into many"
check "a failed parallel restore leaves the target empty" \
  test -z "$(find "$DATA/many/blobs" -type f)"
expect_no_temporaries "failed restore" "$DATA/many"
expect_ok renc restore "$DATA/a/backups/bk" --target many --threads 4
check "then the restore completes" plain_ok many
# A write failing in a big entry, sealed as it is read: blamed on its file.
renc env create solo >/dev/null && renc env set-policy solo --byok local:k >/dev/null &&
  renc put --env solo "$P/d/big" >/dev/null && renc backup create --env solo --name s >/dev/null ||
  fail "solo setup"
RENC_FAULT=write:2:ENOSPC expect_exit 1 renc restore "$DATA/solo/backups/s" --target b --threads 4
expect_msg "writing" "renc-tmp" "No space left" "nothing was restored into b"

finish
