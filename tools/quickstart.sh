#!/usr/bin/env bash
# The DAMO-YOLO quickstart on the embedded demo data (no download):
#   set up -> generate the demo dataset -> mim train -> mim test (CocoMetric)
#   -> draw detections of the val images into the work dir.
# Usage: bash tools/quickstart.sh [WORK_DIR]   (default: work_dirs/quickstart)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
case "${1:-}" in
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
esac
WORK="${1:-work_dirs/quickstart}"
CONFIG="${QUICKSTART_CONFIG:-configs/quickstart/damoyolo_quickstart.py}"

bash tools/setup_env.sh
# shellcheck disable=SC1091
source .venv/bin/activate
export PYTHONUNBUFFERED=1

SECONDS=0
python tools/misc/gen_demo_data.py --out-dir data/demo
mim train damoyolo_mm "$CONFIG" --work-dir "$WORK"
TRAIN_S=$SECONDS
CKPT="$(cat "$WORK/last_checkpoint")"
mim test damoyolo_mm "$CONFIG" --checkpoint "$CKPT" --work-dir "$WORK/test" \
    --show-dir vis
echo
echo "quickstart finished in $((SECONDS / 60)) min $((SECONDS % 60)) s (training ${TRAIN_S} s)"
echo "checkpoint:          $CKPT"
echo "metrics (bbox mAP):  $(ls -t "$WORK"/test/*/*.json 2>/dev/null | head -n1)"
echo "drawn detections:    $(ls -d "$WORK"/test/*/vis 2>/dev/null | head -n1)"
