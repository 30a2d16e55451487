#!/usr/bin/env bash
# tests/e2e/test_slurm.sh — deploy/slurm/ on a real Slurm: munged, slurmctld
# and slurmd from Debian's packages (slurmctld, slurmd, slurm-client,
# munge), configured for one node in this test's folder on private ports of
# 127.0.0.1, and stopped after.  submit.sh queues `sbatch --array=0-3%2` of
# reencrypt-array.sbatch over a tree and the merge after it; the merged
# report must be complete and every blob under the target, each shard with
# its own journal.  Skipped (77, saying why) when the daemons are not
# installed, when not root (slurmd starts jobs as their user), or when they
# do not come up in this sandbox.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RENC_BIN=$(realpath "$RENC_BIN")
DEPLOY=$(realpath "$RENC_TESTS_DIR/../deploy")

for tool in munged slurmctld slurmd sbatch squeue scontrol; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
    echo "SKIP: $tool is not installed (Debian: slurmctld slurmd slurm-client munge)"
    exit 77
  fi
done
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: slurmd must run as root to start jobs; this test is not root"
  exit 77
fi
SL=$WORK/slurm
mkdir -p "$SL/state" "$SL/spool" "$SL/munge"
chmod 700 "$SL/munge"
head -c 1024 /dev/urandom >"$SL/munge/munge.key"
chmod 400 "$SL/munge/munge.key"
ports=$(python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')
read -r CTLD_PORT D_PORT <<<"$ports"
host=$(hostname -s)
export SLURM_CONF=$SL/slurm.conf
cat >"$SLURM_CONF" <<CONF
ClusterName=renctest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$D_PORT
AuthType=auth/munge
AuthInfo=socket=$SL/munge/sock
CredType=cred/munge
StateSaveLocation=$SL/state
SlurmdSpoolDir=$SL/spool
SlurmctldPidFile=$SL/ctld.pid
SlurmdPidFile=$SL/d.pid
SlurmctldLogFile=$SL/ctld.log
SlurmdLogFile=$SL/d.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
# The recipe asks 4 CPUs and 1G a task: the node says it has what two
# tasks at once need, whatever this machine has (config_overrides).
SlurmdParameters=config_overrides
NodeName=$host NodeAddr=127.0.0.1 CPUs=8 RealMemory=4096 State=UNKNOWN
PartitionName=renc Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
stop_slurm() {
  scontrol shutdown >/dev/null 2>&1
  for f in "$SL/ctld.pid" "$SL/d.pid" "$SL/munge/pid"; do
    [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null
  done
  sleep 0.5
}
trap 'stop_slurm; chmod -R u+rwx "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
skip() {
  echo "SKIP: $* (logs follow)"
  tail -n 5 "$SL"/*.log "$SL/munge/log" 2>/dev/null
  exit 77
}
PATH=$PATH:/usr/sbin
munged --force --key-file="$SL/munge/munge.key" --socket="$SL/munge/sock" \
  --pid-file="$SL/munge/pid" --log-file="$SL/munge/log" --seed-file="$SL/munge/seed" ||
  skip "munged does not start here"
slurmctld -f "$SLURM_CONF" || skip "slurmctld does not start here"
slurmd -f "$SLURM_CONF" || skip "slurmd does not start here"
up=0
for _ in $(seq 1 50); do
  if sinfo -h -o '%T' 2>/dev/null | grep -q idle; then up=1; break; fi
  sleep 0.2
done
[ $up -eq 1 ] || skip "the node does not come up idle"

# ---- the corpus and the run -----------------------------------------------------
. "$RENC_TESTS_DIR/e2e/shardlib.sh"
N=200
shard_corpus $N 4 300
cp -a "$SRC" "$WORK/tree"
SH=$WORK/shared
mkdir -p "$SH"
cp -a "$STATE" "$SH/state"
cd "$WORK" || exit 2
expect_ok env RENC_SOURCE="$WORK/tree" RENC_TARGET=local:t RENC_SHARED="$SH" \
  RENC_BIN="$RENC_BIN" RENC_ARGS="--threads 2" "$DEPLOY/slurm/submit.sh" 4 2
expect_out "array job" "4 shards, 2 at once" "merge job"
array=$(sed -n 's/^array job \([0-9]*\) .*/\1/p' "$WORK/out")
merge=$(sed -n 's/.*merge job \([0-9]*\).*/\1/p' "$WORK/out")
done_=0
for _ in $(seq 1 600); do
  if [ -z "$(squeue -h -j "$array,$merge" 2>/dev/null)" ]; then done_=1; break; fi
  sleep 0.2
done
check "the array and the merge ran within 2 minutes" [ $done_ -eq 1 ]
for k in 0 1 2 3; do
  check "array task $k wrote its output" [ -s "$WORK/reencrypt-${array}_$k.out" ]
done
check "the merge job wrote its output" [ -s "$WORK/reencrypt-merge-$merge.out" ]
m=$SH/reports/merged-$array.json
check "the merged report is complete: 4 shards, $N blobs done" \
  [ "$(jq -r '"\(.complete) \(.count) \(.blobs.total) \(.blobs.done)"' "$m" 2>/dev/null)" = \
    "true 4 $N $N" ]
check "each shard kept its own journal" \
  [ "$(ls "$SH"/state/journals/*-shard-*-of-4.db 2>/dev/null | wc -l)" -eq 4 ]
check "every blob is under the target alone" [ "$(slot_refs "$WORK/tree")" = "local:t/1 $N" ]

# ---- the same array sharing one run in a PostgreSQL journal ----------------------
. "$RENC_TESTS_DIR/e2e/pglib.sh"
if pg_start "$WORK/pg" nosync >"$WORK/pg.out" 2>&1; then
  trap 'pg_stop; stop_slurm; chmod -R u+rwx "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
  cp -a "$SRC" "$WORK/tree2"
  expect_ok env RENC_SOURCE="$WORK/tree2" RENC_TARGET=local:t RENC_SHARED="$SH" \
    RENC_BIN="$RENC_BIN" RENC_ARGS="--threads 2" RENC_JOURNAL="$PG_URI" RENC_MODE=rekey \
    "$DEPLOY/slurm/submit.sh" 4 4
  array2=$(sed -n 's/^array job \([0-9]*\) .*/\1/p' "$WORK/out")
  merge2=$(sed -n 's/.*merge job \([0-9]*\).*/\1/p' "$WORK/out")
  done_=0
  for _ in $(seq 1 600); do
    if [ -z "$(squeue -h -j "$array2,$merge2" 2>/dev/null)" ]; then done_=1; break; fi
    sleep 0.2
  done
  check "the PostgreSQL array and its merge ran within 2 minutes" [ $done_ -eq 1 ]
  m2=$SH/reports/merged-$array2.json
  check "the merged view is the journal's: finished, $N blobs done, 4 workers" \
    [ "$(jq -r '"\(.state) \(.blobs.done) \(.workers | length)"' "$m2" 2>/dev/null)" = \
      "finished $N 4" ]
  workers_done=$(jq '[.workers[] | select(.done > 0)] | length' "$m2" 2>/dev/null)
  check "the tasks shared the run (workers with blobs: ${workers_done:-?})" \
    [ "${workers_done:-0}" -ge 1 ]
  check "each task's report is the whole run" \
    [ "$(jq -r '.blobs.done' "$SH/reports/report-${array2}_3.json" 2>/dev/null)" = "$N" ]
  check "every blob of the second tree is under the target alone" \
    [ "$(slot_refs "$WORK/tree2")" = "local:t/1 $N" ]
else
  echo "note: PostgreSQL not available here ($(head -c 200 "$WORK/pg.out")): its array skipped"
fi
if [ "$FAILED" -gt 0 ]; then
  tail -n 20 "$WORK"/reencrypt-*.out "$SL/ctld.log" "$SL/d.log" >&2
fi
finish
