#!/usr/bin/env bash
# Train on a Slurm cluster: GPUS tasks (one per GPU) through srun.
# Usage: bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py options]
#   e.g. GPUS=16 bash tools/slurm_train.sh dev damoyolo_s configs/damoyolo_s_coco.py work_dirs/s --auto-scale-lr
# Environment: GPUS (8, in all), GPUS_PER_NODE (8), CPUS_PER_TASK (5),
#   SRUN_ARGS (extra srun options), PORT (master port, else MASTER_PORT or
#   29500), PYTHON (python).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
case "${1:-}" in
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
if [ $# -lt 4 ]; then
    echo "$(basename "$0"): expected PARTITION JOB_NAME CONFIG WORK_DIR, got $# argument(s); see --help" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}
if [ -n "${PORT:-}" ]; then
    export MASTER_PORT=$PORT
fi
command -v srun >/dev/null 2>&1 || {
    echo "$(basename "$0"): srun not found: run this on a Slurm login node (or use tools/dist_train.sh)" >&2
    exit 2
}
# shellcheck disable=SC2086
PYTHONPATH="$HERE/..${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    "$PYTHON" -u "$HERE/train.py" "$CONFIG" --work-dir="$WORK_DIR" \
    --launcher=slurm "${@:5}"
