# tests/e2e/shardlib.sh — what the shard and recipe tests (test_shard,
# test_recipes, test_slurm) share; sourced after lib.sh.
#
#   shard_corpus N DIRS PAD   keys k (the blobs') and t (the target); N small
#                             blobs sealed under k by one `put` into the
#                             environment "corpus", spread over DIRS
#                             folders, plaintext "blob I" padded to PAD
#                             digits; $WORK/plain holds the plaintexts and
#                             $SRC the sealed tree (never changed: copy it)

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
