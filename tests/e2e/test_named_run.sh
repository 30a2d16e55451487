#!/usr/bin/env bash
# tests/e2e/test_named_run.sh — a named run in a journal file (run --run
# NAME without a server, docs/SCALE.md): the listing streamed into the
# journal in parts, the blobs claimed from it in rounds, so that no process
# holds the whole list:
#   - the process is SIGKILLed while it enters the listing (the fault seam,
#     at the second part of 2,000): the run is unlisted and unfinished, and
#     the next attempt lists it again; a blob moved away in between becomes
#     gone;
#   - the next attempt is SIGKILLed at a commit in the middle of its work;
#     another name is then refused while the run is unfinished;
#   - the third attempt goes on and finishes: every blob committed exactly
#     once (the kernel's count of renames onto each name, by inotify, and
#     the journal's done + skipped agree), no temporaries, every blob opens
#     under the target key alone to its original plaintext (the independent
#     reader, hash-compared), status --run shows the run by name;
#   - the finished run is joined, not started again; --restart lists anew
#     (a blob added since is rekeyed, the rest skipped); a rewrap as a named
#     run rewrites headers in place;
#   - an unnamed run whose listing is longer than a run holds in memory
#     (RENC_LIST_HOLD) goes the same way: killed at a commit, resumed (the
#     listing entered again), every blob committed exactly once;
#     and two shards (--shard K/2) too long to hold list their own blobs
#     into their journals, between them every blob;
#   - bad combinations refused.
# About 40 s in a release build.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$RENC_TESTS_DIR/e2e/shardlib.sh"
RENC_BIN=$(realpath "$RENC_BIN")
WATCH_PID=
trap '[ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null; rm -rf "$WORK"' EXIT

N=${RENC_NAMED_N:-2600}
shard_corpus "$N" 4 100
TREE=$WORK/tree
cp -a "$SRC" "$TREE" || exit 2
(cd "$TREE" && find . -type f -printf '%P\n' | LC_ALL=C sort) >"$WORK/all.lst"
JF=$WORK/j/named.db
mkdir -p "$WORK/j" && chmod 700 "$WORK/j"
RUN=(--to local:t --mode rekey --journal "$JF" --run mig --threads 2 --progress=none)

# ---- refused combinations ----------------------------------------------------------
expect_exit 2 renc run --to local:t --run r --out "$WORK/o" "$TREE"
expect_msg "not with --out"
expect_exit 2 renc run --to local:t --run r --shard 0/2 "$TREE"
expect_msg "not with --shard"
expect_exit 2 renc run --to local:t --run r --no-journal "$TREE"
expect_msg "not with --no-journal"
check "nothing was written by a refused run" [ ! -e "$JF" ]

# ---- killed while entering the listing -----------------------------------------------
RENC_FAULT=enlist:2:KILL "$RENC_BIN" run --state "$STATE" "${RUN[@]}" "$TREE" >"$WORK/a1.out" \
  2>"$WORK/a1.err"
rc=$?
check "the first attempt is killed at the listing's second part (got $rc)" [ $rc -eq 137 ]
expect_ok renc status --journal "$JF" --run mig --json
check "the run is unfinished after a listing cut short: 2000 entered" \
  [ "$(jq -r '"\(.state) \(.blobs.pending)"' "$WORK/out")" = "crashed 2000" ]
# A blob the first part entered, moved away before the run lists again.
moved=$(python3 -c 'import sqlite3,sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(db.execute("SELECT path FROM blobs ORDER BY id LIMIT 1").fetchone()[0])' "$JF")
check "the first part's first blob is in the tree" [ -f "$moved" ]
mv "$moved" "$WORK/aside.renc"
rel=${moved#"$TREE"/}
grep -vxF "$rel" "$WORK/all.lst" >"$WORK/left.lst"
mv "$WORK/left.lst" "$WORK/all.lst"
M=$((N - 1))

# ---- killed at a commit, then resumed ----------------------------------------------------
watch_commits "$TREE" "$WORK/commits.tsv"
RENC_FAULT=commit:700:KILL "$RENC_BIN" run --state "$STATE" "${RUN[@]}" "$TREE" >"$WORK/a2.out" \
  2>"$WORK/a2.err"
rc=$?
check "the second attempt is killed at its 700th commit (got $rc)" [ $rc -eq 137 ]
check "the second attempt listed the run again: $M blobs" \
  grep -q "listed the run: $M blobs" "$WORK/a2.out"
expect_exit 2 renc run --to local:t --mode rekey --journal "$JF" --run other "$TREE"
expect_msg "it is run mig, not run other"
expect_ok renc run "${RUN[@]}" --report "$WORK/rep.json" "$TREE"
expect_out "run mig (" "goes on" "$M of $M blobs finished" "1 gone; finished"
watch_end
expect_ok renc status --journal "$JF" --run mig --json
cp "$WORK/out" "$WORK/status.json"
check "the run is finished: $M done or skipped, 1 gone, the name recorded" \
  [ "$(jq -r '"\(.state) \(.blobs.pending) \(.blobs.failed) \(.blobs.done + .blobs.skipped) \(.blobs.gone) \(.name)"' \
    "$WORK/status.json")" = "finished 0 0 $M 1 mig" ]
check "every blob was committed exactly once ($(wc -l <"$WORK/commits.tsv") names renamed onto)" \
  committed_once "$WORK/commits.tsv" "$WORK/all.lst"
check "the journal agrees: done + skipped = $M commits" \
  [ "$(jq -r '.blobs.done + .blobs.skipped' "$WORK/status.json")" -eq "$(wc -l <"$WORK/commits.tsv")" ]
check "the report is the run's: $M blobs, no failure, this attempt's rounds" \
  [ "$(jq -r '"\(.blobs.total) \(.blobs.failed) \(.this_attempt.rounds > 0)"' "$WORK/rep.json")" = "$M 0 true" ]
all_under "$TREE" local:t/1 $M "a named run killed twice"
expect_ok renc status --journal "$JF" --run mig
expect_out "run       mig (" "finished"
expect_exit 1 renc status --journal "$JF" --run other
expect_msg "holds run mig, not run other"

# ---- joined when finished; --restart lists anew -------------------------------------------
mv "$WORK/aside.renc" "$moved"
expect_ok renc run "${RUN[@]}" "$TREE"
expect_out "this attempt: 0 blobs re-encrypted" "$M of $M blobs finished"
expect_ok renc run "${RUN[@]}" --restart "$TREE"
expect_out "listed the run: $N blobs" "this attempt: 1 blobs re-encrypted, $M skipped"

# ---- a rewrap as a named run: headers rewritten in place -----------------------------------
renc keys create t2 >/dev/null
expect_ok renc run --to local:t2 --journal "$JF" --run wrap --restart --progress=none "$TREE"
expect_out "this attempt: $N blobs re-encrypted" "$N of $N blobs finished"
refs=$(slot_refs "$TREE")
check "every blob is under t2 alone (got: $refs)" [ "$refs" = "local:t2/1 $N" ]
expect_ok renc verify "$TREE"

# ---- an unnamed run longer than a run holds: in rounds, resumed -----------------------------
renc keys create t3 >/dev/null
watch_commits "$TREE" "$WORK/hcommits.tsv"
HOLD=(--to local:t3 --mode rekey --journal "$WORK/j/held.db" --threads 2 --progress=none)
RENC_LIST_HOLD=1000 RENC_FAULT=commit:900:KILL "$RENC_BIN" run --state "$STATE" "${HOLD[@]}" \
  "$TREE" >"$WORK/h1.out" 2>"$WORK/h1.err"
rc=$?
check "a run over $N blobs holding 1000 is killed at a commit (got $rc)" [ $rc -eq 137 ]
check "a run over $N blobs holding 1000 goes in rounds" grep -q "more than 1000 blobs" "$WORK/h1.out"
RENC_LIST_HOLD=1000 expect_ok renc run "${HOLD[@]}" "$TREE"
expect_out "more than 1000 blobs" "goes on" "listed the run: $N blobs" "$N of $N blobs finished"
watch_end
(cd "$TREE" && find . -type f -printf '%P\n' | LC_ALL=C sort) >"$WORK/all.lst"
check "every blob was committed exactly once ($(wc -l <"$WORK/hcommits.tsv") names renamed onto)" \
  committed_once "$WORK/hcommits.tsv" "$WORK/all.lst"
all_under "$TREE" local:t3/1 $N "an unnamed run in rounds, killed"

# ---- shards too long to hold: each shard's own blobs, in rounds ------------------------------
renc keys create t4 >/dev/null
for k in 0 1; do
  RENC_LIST_HOLD=500 expect_ok renc run --to local:t4 --shard $k/2 --progress=none "$TREE"
  expect_out "more than 500 blobs" "listed the run:"
  grep -o "listed the run: [0-9]* blobs" "$WORK/out" >>"$WORK/shard-listed"
done
check "the two shards listed $N blobs between them" \
  [ "$(awk '{s += $4} END {print s}' "$WORK/shard-listed")" -eq "$N" ]
refs=$(slot_refs "$TREE")
check "every blob is under t4 alone (got: $refs)" [ "$refs" = "local:t4/1 $N" ]
finish
