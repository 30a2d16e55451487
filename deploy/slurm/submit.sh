#!/bin/bash
# deploy/slurm/submit.sh SHARDS [PARALLEL] — queues the array of SHARDS
# tasks (at most PARALLEL at once, default all) and the merge after it.
# RENC_SOURCE, RENC_TARGET and RENC_SHARED as reencrypt-array.sbatch says.
set -euo pipefail
shards=${1:?usage: submit.sh SHARDS [PARALLEL]}
parallel=${2:-$shards}
here=$(cd "$(dirname "$0")" && pwd)
: "${RENC_SOURCE:?set RENC_SOURCE}" "${RENC_TARGET:?set RENC_TARGET}" "${RENC_SHARED:?set RENC_SHARED}"
array=$(sbatch --parsable --array="0-$((shards - 1))%$parallel" --export=ALL \
  "$here/reencrypt-array.sbatch")
array=${array%%;*}
merge=$(sbatch --parsable --dependency="afterany:$array" \
  --export="ALL,RENC_ARRAY_JOB=$array,RENC_DEPLOY_DIR=$here" "$here/merge.sbatch")
echo "array job $array ($shards shards, $parallel at once); merge job ${merge%%;*}"
