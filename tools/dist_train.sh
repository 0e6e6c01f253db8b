#!/usr/bin/env bash
# Train with torchrun: GPUS processes on this node (one per GPU; on a machine
# without GPUs, CPU processes talking over gloo).
# Usage: bash tools/dist_train.sh CONFIG GPUS [tools/train.py options]
#   e.g. bash tools/dist_train.sh configs/damoyolo_s_coco.py 8 --auto-scale-lr
# Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1),
#   PORT (29500; another one for a second job on the same node),
#   PYTHON (python).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
case "${1:-}" in
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
# shellcheck source=tools/dist_common.sh
source "$HERE/dist_common.sh"
dist_check_args 2 "CONFIG GPUS" "$@"
CONFIG=$1
GPUS=$2
dist_check_launch "$GPUS"
PYTHONPATH="$HERE/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node-rank="$NODE_RANK" \
    --master-addr="$MASTER_ADDR" --master-port="$PORT" \
    --nproc-per-node="$GPUS" \
    "$HERE/train.py" "$CONFIG" --launcher pytorch "${@:3}"
