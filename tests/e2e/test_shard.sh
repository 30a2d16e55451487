#!/usr/bin/env bash
# tests/e2e/test_shard.sh — `--shard K/N` (docs/SCALE.md): N shards of one
# tree, run together, cover every blob exactly once, each with its own
# journal, and every blob opens under the target afterwards; the split is
# the documented one (first 8 bytes of SHA-256 of the blob's name under its
# source root, modulo N: recomputed here by Python's hashlib); `plan` and
# `verify` split the same way; --shard auto reads Slurm's and Kubernetes'
# variables; a journal holding one shard's unfinished run refuses another
# shard; bad values are refused with a reason.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RENC_BIN=$(realpath "$RENC_BIN")

. "$RENC_TESTS_DIR/e2e/shardlib.sh"
N=400
shard_corpus $N 7 512
TREE=$WORK/tree
cp -a "$SRC" "$TREE" || exit 2
(cd "$TREE" && find . -type f -printf '%P\n' | LC_ALL=C sort) >"$WORK/all.lst"
check "the corpus has $N blobs" [ "$(wc -l <"$WORK/all.lst")" -eq "$N" ]

# The split as documented, computed independently: REL<TAB>SHARD for N=4.
python3 - "$WORK/all.lst" 4 >"$WORK/expect.tsv" <<'PY'
import hashlib, sys
n = int(sys.argv[2])
for rel in open(sys.argv[1]).read().split('\n'):
    if rel:
        h = int.from_bytes(hashlib.sha256(rel.encode()).digest()[:8], 'big')
        print(f"{rel}\t{h % n}")
PY

# ---- bad values -------------------------------------------------------------
expect_exit 2 renc run --to local:t --shard 4/4 "$TREE"
expect_msg "shard 4 of 4 does not exist" "numbered from 0 to 3"
expect_exit 2 renc run --to local:t --shard 1/0 "$TREE"
expect_msg "count must be 1.."
expect_exit 2 renc verify --shard half "$TREE"
expect_msg "--shard must be K/N"
expect_exit 2 renc plan --shard -1/2 "$TREE"
expect_msg "--shard must be K/N"
expect_exit 2 env -u JOB_COMPLETION_INDEX -u SLURM_ARRAY_TASK_ID "$RENC_BIN" verify \
  --state "$STATE" --shard auto "$TREE"
expect_msg "not in a Kubernetes Indexed Job" "nor a Slurm job array"
expect_exit 2 env JOB_COMPLETION_INDEX=1 "$RENC_BIN" verify --state "$STATE" --shard auto "$TREE"
expect_msg "RENC_SHARD_COUNT" "spec.completions"
expect_exit 2 env -u JOB_COMPLETION_INDEX SLURM_ARRAY_TASK_ID=3 SLURM_ARRAY_TASK_COUNT=3 \
  SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_MAX=7 "$RENC_BIN" verify --state "$STATE" \
  --shard auto "$TREE"
expect_msg "not evenly spaced"
expect_exit 2 renc run --to local:t --shard 0/2 --shard 1/2 "$TREE"
check "no journal made by refused runs" [ ! -e "$STATE/journals" ] || \
  [ -z "$(ls "$STATE/journals" 2>/dev/null)" ]

# ---- plan and verify split the same way --------------------------------------
sum=0
for k in 0 1 2 3; do
  want=$(awk -F'\t' -v k=$k '$2 == k' "$WORK/expect.tsv" | wc -l)
  expect_ok renc plan --json --shard $k/4 "$TREE"
  got=$(jq -r .blobs "$WORK/out")
  check "plan --shard $k/4 counts $want blobs (got $got)" [ "$got" = "$want" ]
  check "plan's JSON names the shard" [ "$(jq -r .shard "$WORK/out")" = "$k/4" ]
  sum=$((sum + got))
done
check "the plans of 4 shards add up to $N (got $sum)" [ "$sum" -eq "$N" ]
# auto from a Slurm array starting at 1 (task 3 of 1-4: shard 2/4) and
# from a Kubernetes Indexed Job (index 1, RENC_SHARD_COUNT=4).
want2=$(awk -F'\t' '$2 == 2' "$WORK/expect.tsv" | wc -l)
expect_ok env -u JOB_COMPLETION_INDEX SLURM_ARRAY_TASK_ID=3 SLURM_ARRAY_TASK_COUNT=4 \
  SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_MAX=4 "$RENC_BIN" verify --state "$STATE" \
  --shard auto --report "$WORK/v2.json" "$TREE"
expect_out "shard 2/4 (from SLURM_ARRAY_TASK_ID" "$want2 of the $N blobs listed"
check "verify of shard 2/4 read its $want2 blobs" \
  [ "$(jq -r .blobs.total "$WORK/v2.json")" = "$want2" ]
want1=$(awk -F'\t' '$2 == 1' "$WORK/expect.tsv" | wc -l)
expect_ok env JOB_COMPLETION_INDEX=1 RENC_SHARD_COUNT=4 "$RENC_BIN" verify --state "$STATE" \
  --shard auto "$TREE"
expect_out "shard 1/4 (from JOB_COMPLETION_INDEX" "$want1 of the $N blobs listed"

# ---- four shards run together -------------------------------------------------
# Each writes its counters with --metrics-file; a reader parses every
# version of shard 0's file it sees while they run (never a torn one).
PROM=$RENC_TESTS_DIR/e2e/prom_check.py
python3 "$PROM" --watch "$WORK/m0.prom" "$WORK/stop" >"$WORK/watch.out" 2>"$WORK/watch.err" &
watcher=$!
pids=()
for k in 0 1 2 3; do
  renc run --to local:t --mode rekey --shard $k/4 --progress=none --report "$WORK/r$k.json" \
    --metrics-file "$WORK/m$k.prom" "$TREE" >"$WORK/run$k.out" 2>"$WORK/run$k.err" &
  pids+=($!)
done
for k in 0 1 2 3; do
  wait "${pids[$k]}"
  rc=$?
  check "shard $k/4 exits 0 (got $rc)" [ "$rc" -eq 0 ] || cat "$WORK/run$k.err" >&2
done
: >"$WORK/journaled.tsv"
for k in 0 1 2 3; do
  j=$(jq -r .journal "$WORK/r$k.json")
  check "shard $k has its own journal ($j)" [ "${j%-shard-$k-of-4.db}" != "$j" ]
  check "report of shard $k names it" [ "$(jq -r '.shard | "\(.index)/\(.count)/\(.listed)"' \
    "$WORK/r$k.json")" = "$k/4/$N" ]
  check "journal of shard $k records its shard" \
    [ "$(sqlite3 -readonly "$j" 'SELECT shard FROM run')" = "$k/4" ]
  sqlite3 -readonly "$j" "SELECT path, state FROM blobs" |
    while IFS='|' read -r p st; do printf '%s\t%s\t%s\n' "${p#"$TREE"/}" "$k" "$st"; done \
      >>"$WORK/journaled.tsv"
done
touch "$WORK/stop"
wait $watcher
check "every version of the metrics file seen during the run parses ($(cat "$WORK/watch.out") \
seen; $(cat "$WORK/watch.err"))" [ -s "$WORK/watch.out" ]
for k in 0 1 2 3; do
  python3 "$PROM" "$WORK/m$k.prom" >"$WORK/m$k.json"
  check "shard $k's metrics file parses" [ -s "$WORK/m$k.json" ]
  check "shard $k's final metrics are its report's" [ "$(jq -r \
    '[.["reencrypt_blobs_total{outcome=done}"], .["reencrypt_blobs_total{outcome=skipped}"],
      .["reencrypt_blobs_total{outcome=failed}"], .["reencrypt_blobs_listed{}"],
      .["reencrypt_bytes_total{}"], .["reencrypt_finished{}"],
      .["reencrypt_blobs_in_flight{}"]] | map(tostring) | join(" ")' "$WORK/m$k.json")" = \
    "$(jq -r '[.blobs.done, .blobs.skipped, .blobs.failed, .blobs.total, .bytes, 1, 0] |
      map(tostring) | join(" ")' "$WORK/r$k.json")" ]
  check "shard $k's metrics name it" \
    [ "$(jq -r '.["reencrypt_info{command=run,shard='$k'/4}"]' "$WORK/m$k.json")" = 1 ]
done
check "the 4 journals hold $N blobs together" [ "$(wc -l <"$WORK/journaled.tsv")" -eq "$N" ]
check "each blob is in exactly one journal, the one its hash names" \
  cmp -s <(cut -f1,2 "$WORK/journaled.tsv" | LC_ALL=C sort) <(LC_ALL=C sort "$WORK/expect.tsv")
check "every blob is done" [ "$(cut -f3 "$WORK/journaled.tsv" | sort -u)" = "done" ]
total=$(jq -s 'map(.blobs.done) | add' "$WORK"/r[0-3].json)
check "the reports' done counts add up to $N (got $total)" [ "$total" -eq "$N" ]
# The recipes' merge of the shards' reports (deploy/slurm/merge-reports.sh).
MERGE=$RENC_TESTS_DIR/../deploy/slurm/merge-reports.sh
expect_ok "$MERGE" "$WORK/merged.json" "$WORK"/r[0-3].json
check "the merged report is complete: 4 shards, $N blobs done" [ "$(jq -r \
  '"\(.complete) \(.count) \(.shards | join(",")) \(.blobs.total) \(.blobs.done) \(.blobs.failed)"' \
  "$WORK/merged.json")" = "true 4 0,1,2,3 $N $N 0" ]
expect_exit 1 "$MERGE" "$WORK/merged3.json" "$WORK"/r[013].json
expect_msg "incomplete" "not 0..3 once each"
check "a merge missing a shard says so in its JSON" \
  [ "$(jq -r .complete "$WORK/merged3.json")" = false ]
expect_exit 1 "$MERGE" "$WORK/merged5.json" "$WORK"/r[0-3].json "$WORK/r0.json"
expect_msg "not 0..3 once each"
# Every blob opens under the target alone, to its original plaintext.
ok=1
while IFS= read -r rel; do
  renc decrypt "$TREE/$rel" "$WORK/dec" 2>/dev/null && cmp -s "$WORK/dec" "$WORK/plain/$rel" || {
    ok=0
    echo "blob $rel does not open to its plaintext" >&2
    break
  }
done < <(sed -n '1~25p' "$WORK/all.lst")
check "a sample of blobs decrypts to its plaintext" [ $ok -eq 1 ]
refs=$(slot_refs "$TREE")
check "every blob has one slot, the target's (got: $refs)" [ "$refs" = "local:t/1 $N" ]
if have_pycheck; then
  # The independent reader opens each with that key alone; its plaintext
  # hashes must be the originals'.
  check "every blob opens with the target's key alone, to its original plaintext" \
    shard_opens "$TREE" local:t/1
fi
expect_ok renc verify "$TREE"
expect_no_temporaries "$TREE"

# ---- locks: the shards of one tree go together; a whole-tree run waits ---------
cp -a "$SRC" "$WORK/tree3"
"$RENC_BIN" run --state "$STATE" --to local:t --shard 0/2 --threads 1 --progress=none \
  "$WORK/tree3" >"$WORK/s0.out" 2>&1 &
spid=$!
# Frozen once it holds its journal's lock (exclusive; taken after the
# tree's, which is shared for a shard).
for _ in $(seq 1 3000); do
  grep -Eq "FLOCK +ADVISORY +WRITE +$spid " /proc/locks && break
  sleep 0.01
done
kill -STOP $spid
if kill -0 $spid 2>/dev/null && grep -Eq "FLOCK +ADVISORY +WRITE +$spid " /proc/locks; then
  expect_exit 1 renc run --to local:t --progress=none "$WORK/tree3"
  expect_msg "another run is working on it"
  expect_ok renc run --to local:t --shard 1/2 --progress=none "$WORK/tree3"
  kill -CONT $spid
else
  kill -CONT $spid 2>/dev/null
  fail "shard 0/2 did not hold its lock long enough to test"
fi
wait $spid
check "the frozen shard finished (exit $?)" grep -q "0 failed" "$WORK/s0.out"
check "the two shards together moved every blob" [ "$(slot_refs "$WORK/tree3")" = "local:t/1 $N" ]

# A rerun of one shard finds its run over and starts a new one: everything
# is under the target already.
expect_ok renc run --to local:t --shard 3/4 --progress=none --report "$WORK/again.json" "$TREE"
check "a rerun of shard 3 skips its blobs" \
  [ "$(jq -r '.blobs.skipped' "$WORK/again.json")" = "$(jq -r .blobs.total "$WORK/r3.json")" ]

# ---- another shard is another run -------------------------------------------
# A shard's run left unfinished (a write fails) is not taken over by
# another shard given the same journal.
cp -a "$SRC" "$WORK/tree2"
J=$WORK/one.db
expect_exit 1 env RENC_FAULT=write:3:EIO "$RENC_BIN" run --state "$STATE" --to local:t \
  --shard 0/2 --journal "$J" --progress=none --report "$WORK/f.json" \
  --metrics-file "$WORK/f.prom" "$WORK/tree2"
python3 "$PROM" "$WORK/f.prom" >"$WORK/f.json.m"
check "a failed blob is counted in the metrics as in the report" [ "$(jq -r \
  '.["reencrypt_blobs_total{outcome=failed}"]' "$WORK/f.json.m")" = \
  "$(jq -r '.blobs.failed' "$WORK/f.json")" ]
check "and it is not zero" [ "$(jq -r '.blobs.failed' "$WORK/f.json")" -gt 0 ]
printf '# TYPE x counter\nx_total 1 1700000000\n' >"$WORK/bad.prom"
check "the metrics reader refuses a sample with a timestamp" \
  bash -c '! python3 "$1" "$2" 2>/dev/null' _ "$PROM" "$WORK/bad.prom"
expect_exit 2 renc run --to local:t --shard 1/2 --journal "$J" "$WORK/tree2"
expect_msg "it is shard 0/2, not shard 1/2" "--restart"
expect_exit 2 renc run --to local:t --journal "$J" "$WORK/tree2"
expect_msg "it is shard 0/2, not the whole run"
expect_ok renc status --journal "$J"
expect_out "shard     0/2"
expect_ok renc run --to local:t --shard 0/2 --journal "$J" --progress=none "$WORK/tree2"
expect_out "resuming run"

finish
