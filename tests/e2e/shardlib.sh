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
