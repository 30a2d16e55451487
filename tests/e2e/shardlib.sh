# tests/e2e/shardlib.sh — what the shard and recipe tests (test_shard,
# test_recipes, test_slurm) share; sourced after lib.sh.
#
#   shard_corpus N DIRS PAD   keys k (the blobs') and t (the target); N small
#                             blobs sealed under k by one `put` into the
#                             environment "corpus", spread over DIRS
#                             folders, plaintext "blob I" padded to PAD
#                             digits; $WORK/plain holds the plaintexts and
#                             $SRC the sealed tree (never changed: copy it)
#   shard_opens TREE REF      every blob of $WORK/all.lst (paths under TREE)
#                             opens with REF's key alone, by the independent
#                             reader, to its plaintext under $WORK/plain
#                             (hash-compared); needs have_pycheck
#   watch_commits TREE TSV    counts the renames onto each name under TREE
#                             (commit_watch.py, inotify) into TSV until
#                             watch_end; WATCH_PID is the watcher (the
#                             test's EXIT trap kills it)
#   committed_once TSV LIST   every name of LIST renamed onto exactly once,
#                             no other, and no watch overflow
#   all_under TREE REF N WHAT no temporaries left in TREE (WHAT says by
#                             what), its N blobs each with one slot, REF's,
#                             each opening with REF's key alone to its
#                             plaintext (shard_opens, with the reader)

shard_corpus() {
  local n=$1 dirs=$2 pad=$3 i
  renc keys create k >/dev/null || exit 2
  renc keys create t >/dev/null || exit 2
  mkdir -p "$WORK/plain"
  for ((i = 0; i < n; i++)); do
    mkdir -p "$WORK/plain/d$((i % dirs))"
    printf "blob %d %0${pad}d" "$i" "$i" >"$WORK/plain/d$((i % dirs))/f$i"
  done
  renc env create corpus >/dev/null || exit 2
  renc put --env corpus "$WORK/plain" >/dev/null || exit 2
  SRC=$STATE/data/corpus/blobs/plain
}

shard_opens() {
  local tree=$1 ref=$2
  sed "s|^|$tree/|" "$WORK/all.lst" | renc_check --only "$ref" --root "$tree" \
    --list /dev/stdin | jq -r '"\(.rel)\t\(.status)\t\(.sha256)"' | LC_ALL=C sort >"$WORK/opened.tsv"
  (cd "$WORK/plain" && while IFS= read -r rel; do
    printf '%s\tok\t%s\n' "$rel" "$(sha256sum <"$rel" | cut -d' ' -f1)"
  done <"$WORK/all.lst") | LC_ALL=C sort >"$WORK/want.tsv"
  cmp -s "$WORK/opened.tsv" "$WORK/want.tsv"
}

watch_commits() {
  python3 "$RENC_TESTS_DIR/e2e/commit_watch.py" "$1" "$2" "$2.ready" &
  WATCH_PID=$!
  for _ in $(seq 1 100); do [ -s "$2.ready" ] && break; sleep 0.05; done
  check "the commit watcher is ready" [ -s "$2.ready" ]
}

watch_end() {
  kill "$WATCH_PID"
  wait "$WATCH_PID"
  WATCH_PID=
}

committed_once() {
  ! grep -q OVERFLOW "$1" && [ "$(awk '$1 != 1' "$1" | wc -l)" -eq 0 ] &&
    cut -f2 "$1" | LC_ALL=C sort | cmp -s - "$2"
}

all_under() {
  local tree=$1 ref=$2 n=$3 refs
  expect_no_temporaries "$4" "$tree"
  refs=$(slot_refs "$tree")
  check "every blob has one slot, $ref's (got: $refs)" [ "$refs" = "$ref $n" ]
  if have_pycheck; then
    check "every blob opens with $ref's key alone, to its original plaintext" \
      shard_opens "$tree" "$ref"
  fi
}
