#!/usr/bin/env bash
# tests/e2e/test_recipes.sh — the engines' recipes (deploy/, docs/SCALE.md)
# run here without the engines: what each engine would start, started by
# hand with the variables the engine sets.
#   - Slurm: deploy/slurm/reencrypt-array.sbatch run as the 3 tasks of
#     `sbatch --array=1-3` (SLURM_ARRAY_TASK_ID 1..3, _MIN 1, _MAX 3,
#     _COUNT 3), then merge.sbatch: the merged report is complete and every
#     blob is under the target; a task of a sparse array is refused.
#   - Kubernetes: deploy/kubernetes/job.yaml's container args, with its key
#     and container URL swapped for a local key and tree, run once per index
#     (JOB_COMPLETION_INDEX 0..completions-1, RENC_SHARD_COUNT from the
#     manifest, which must equal completions); the reports merge complete.
#     Needs python3 with yaml to read the manifest (else that part is
#     skipped, said so).
# What is NOT tested here: a real Slurm controller (slurmctld, slurmd,
# munge), a real cluster, the image build, workload identity.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RENC_BIN=$(realpath "$RENC_BIN")
DEPLOY=$(realpath "$RENC_TESTS_DIR/../deploy")

. "$RENC_TESTS_DIR/e2e/shardlib.sh"
N=120
shard_corpus $N 5 256

# under_target TREE: every blob of TREE has one slot, the target's.
under_target() {
  [ "$(slot_refs "$1")" = "local:t/1 $N" ]
}

# ---- Slurm --------------------------------------------------------------------
cp -a "$SRC" "$WORK/slurm-tree"
SH=$WORK/shared
mkdir -p "$SH"
cp -a "$STATE" "$SH/state" # the keyring every node sees
for task in 1 2 3; do
  expect_ok env -u JOB_COMPLETION_INDEX SLURM_ARRAY_JOB_ID=77 SLURM_ARRAY_TASK_ID=$task \
    SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_MAX=3 SLURM_ARRAY_TASK_COUNT=3 \
    RENC_SOURCE="$WORK/slurm-tree" RENC_TARGET=local:t RENC_SHARED="$SH" RENC_BIN="$RENC_BIN" \
    bash "$DEPLOY/slurm/reencrypt-array.sbatch"
  expect_out "shard $((task - 1))/3 (from SLURM_ARRAY_TASK_ID"
done
check "each task left its report and metrics" \
  [ "$(ls "$SH"/reports/report-77_*.json "$SH"/metrics/reencrypt-77_*.prom | wc -l)" -eq 6 ]
check "each shard its own journal" [ "$(ls "$SH"/state/journals/*-shard-*-of-3.db | wc -l)" -eq 3 ]
expect_ok env RENC_SHARED="$SH" RENC_ARRAY_JOB=77 RENC_DEPLOY_DIR="$DEPLOY/slurm" \
  bash "$DEPLOY/slurm/merge.sbatch"
expect_out "3 shards, $N blobs: $N done"
check "the merged report is complete" [ "$(jq -r .complete "$SH/reports/merged-77.json")" = true ]
check "every blob of the Slurm run is under the target" under_target "$WORK/slurm-tree"
# A task rerun (Slurm's requeue) resumes its shard: nothing left to do.
expect_ok env -u JOB_COMPLETION_INDEX SLURM_ARRAY_JOB_ID=77 SLURM_ARRAY_TASK_ID=2 \
  SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_MAX=3 SLURM_ARRAY_TASK_COUNT=3 \
  RENC_SOURCE="$WORK/slurm-tree" RENC_TARGET=local:t RENC_SHARED="$SH" RENC_BIN="$RENC_BIN" \
  bash "$DEPLOY/slurm/reencrypt-array.sbatch"
check "a requeued task re-encrypts nothing" \
  [ "$(jq -r .blobs.done "$SH/reports/report-77_2.json")" = 0 ]
expect_exit 2 env -u JOB_COMPLETION_INDEX SLURM_ARRAY_JOB_ID=78 SLURM_ARRAY_TASK_ID=3 \
  SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_MAX=7 SLURM_ARRAY_TASK_COUNT=3 \
  RENC_SOURCE="$WORK/slurm-tree" RENC_TARGET=local:t RENC_SHARED="$SH" RENC_BIN="$RENC_BIN" \
  bash "$DEPLOY/slurm/reencrypt-array.sbatch"
expect_msg "not evenly spaced"
expect_exit 2 env -u SLURM_ARRAY_TASK_ID RENC_SOURCE=x RENC_TARGET=y RENC_SHARED="$SH" \
  bash "$DEPLOY/slurm/reencrypt-array.sbatch"
expect_msg "not an array task"

# ---- Kubernetes ------------------------------------------------------------------
if python3 -c 'import yaml' 2>/dev/null; then
  cp -a "$SRC" "$WORK/k8s-tree"
  mkdir -p "$WORK/k8s/state"
  cp -a "$STATE/keyring" "$WORK/k8s/state/"
  # The manifest's container args, its vault key and container swapped for
  # local:t and the tree, /shared for a folder here: one line each.
  python3 - "$DEPLOY/kubernetes/job.yaml" "$WORK/k8s" "$WORK/k8s-tree" >"$WORK/k8s.args" <<'PY'
import sys, yaml
job = yaml.safe_load(open(sys.argv[1]))
spec = job["spec"]
assert spec["completionMode"] == "Indexed", "completionMode"
assert "backoffLimitPerIndex" in spec and "parallelism" in spec
pod = spec["template"]
assert pod["metadata"]["labels"].get("azure.workload.identity/use") == "true"
c = pod["spec"]["containers"][0]
env = {e["name"]: e.get("value") for e in c.get("env", [])}
assert env.get("RENC_SHARD_COUNT") == str(spec["completions"]), "RENC_SHARD_COUNT != completions"
print(spec["completions"])
for a in c["args"]:
    if a.startswith("--to="):
        a = "--to=local:t"
    elif a.startswith("https://"):
        a = sys.argv[3]
    print(a.replace("/shared", sys.argv[2]))
PY
  check "job.yaml is an Indexed Job whose RENC_SHARD_COUNT is its completions" [ -s "$WORK/k8s.args" ]
  completions=$(head -n 1 "$WORK/k8s.args")
  mapfile -t args < <(tail -n +2 "$WORK/k8s.args")
  mkdir -p "$WORK/k8s/reports" "$WORK/k8s/metrics"
  ok=1
  for ((i = 0; i < completions; i++)); do
    run env -u SLURM_ARRAY_TASK_ID JOB_COMPLETION_INDEX=$i RENC_SHARD_COUNT=$completions \
      "$RENC_BIN" "${args[@]//\$(JOB_COMPLETION_INDEX)/$i}"
    [ "$RC" -eq 0 ] || { ok=0; _show_last; }
  done
  check "every index of the Indexed Job exits 0" [ $ok -eq 1 ]
  expect_ok "$DEPLOY/slurm/merge-reports.sh" "$WORK/k8s/merged.json" "$WORK"/k8s/reports/report-*.json
  check "the Job's merged report is complete, $completions shards" \
    [ "$(jq -r '"\(.complete) \(.count) \(.blobs.done)"' "$WORK/k8s/merged.json")" = "true $completions $N" ]
  check "every blob of the Kubernetes run is under the target" under_target "$WORK/k8s-tree"
  # job-pg.yaml: its pods share one run in the journal the Secret names.
  . "$RENC_TESTS_DIR/e2e/pglib.sh"
  if pg_start "$WORK/pg" nosync >"$WORK/pg.out" 2>&1; then
    trap 'pg_stop; chmod -R u+rwx "$WORK" 2>/dev/null; rm -rf "$WORK" "$WORK.vg"' EXIT
    cp -a "$SRC" "$WORK/k8s-pg-tree"
    mkdir -p "$WORK/k8s-pg/state" "$WORK/k8s-pg/reports" "$WORK/k8s-pg/metrics"
    cp -a "$STATE/keyring" "$WORK/k8s-pg/state/"
    python3 - "$DEPLOY/kubernetes/job-pg.yaml" "$DEPLOY/kubernetes/secret.yaml" "$WORK/k8s-pg" \
      "$WORK/k8s-pg-tree" >"$WORK/k8s-pg.args" <<'PY'
import sys, yaml
job, secret = yaml.safe_load(open(sys.argv[1])), yaml.safe_load(open(sys.argv[2]))
spec = job["spec"]
assert spec["completions"] == spec["parallelism"], "completions != parallelism"
c = spec["template"]["spec"]["containers"][0]
refs = [e["secretRef"]["name"] for e in c.get("envFrom", []) if "secretRef" in e]
assert refs == [secret["metadata"]["name"]], "the Secret is not the container's env"
assert {"RENC_JOURNAL", "PGPASSWORD"} <= set(secret["stringData"]), "the Secret's keys"
assert "--journal=$(RENC_JOURNAL)" in c["args"], "--journal from the Secret"
assert not any(a.startswith("--shard") for a in c["args"]), "shards beside a shared journal"
print(spec["completions"])
for a in c["args"]:
    if a.startswith("--to="):
        a = "--to=local:t"
    elif a.startswith("https://"):
        a = sys.argv[4]
    print(a.replace("/shared", sys.argv[3]))
PY
    check "job-pg.yaml takes its journal from the Secret, no shards" [ -s "$WORK/k8s-pg.args" ]
    pods=$(head -n 1 "$WORK/k8s-pg.args")
    mapfile -t args < <(tail -n +2 "$WORK/k8s-pg.args")
    # The pods run at once, each with the Secret's variables (the URI of
    # the server this test started; no password: trust on its socket).
    pids=()
    for ((i = 0; i < pods; i++)); do
      a=("${args[@]//\$(JOB_COMPLETION_INDEX)/$i}")
      env -u SLURM_ARRAY_TASK_ID JOB_COMPLETION_INDEX=$i RENC_JOURNAL="$PG_URI" \
        "$RENC_BIN" "${a[@]//\$(RENC_JOURNAL)/"$PG_URI"}" >"$WORK/pod$i.out" 2>&1 &
      pids+=($!)
    done
    ok=1
    for p in "${pids[@]}"; do wait "$p" || ok=0; done
    check "every pod of job-pg.yaml exits 0" [ $ok -eq 1 ] || cat "$WORK"/pod*.out >&2
    check "each pod's report is the whole run: $N blobs done" \
      [ "$(jq -s -r 'map(.blobs.done) | unique | join(" ")' "$WORK"/k8s-pg/reports/report-*.json)" = "$N" ]
    check "the last pod's report lists the $pods pods as workers" \
      [ "$(jq -s 'map(.workers | length) | max' "$WORK"/k8s-pg/reports/report-*.json)" = "$pods" ]
    check "every blob of the shared run is under the target" under_target "$WORK/k8s-pg-tree"
  else
    echo "NOTE: PostgreSQL not available: job-pg.yaml not exercised ($(head -c 200 "$WORK/pg.out"))"
  fi
else
  echo "NOTE: no python3 yaml: deploy/kubernetes/job.yaml not exercised"
fi

finish
