#!/usr/bin/env bash
# The fine-tuning demo on the embedded demo data (no download):
#   make a new task (3 of the 5 demo shape classes, new images: generator
#   seed 1, 80 train / 40 val) -> fine-tune the quickstart model on it ->
#   train the same model from random weights with the same schedule and seed
#   -> evaluate both on the new task's val split and print the two bbox APs
#   and training times.
# Usage: bash tools/finetune_demo.sh [WORK_DIR] [--base-ckpt CKPT]
#   WORK_DIR defaults to work_dirs/finetune_demo. CKPT: the quickstart model
#   (`bash tools/quickstart.sh` writes work_dirs/quickstart/epoch_55.pth);
#   without it, the one cached in WORK_DIR/quickstart is used, else the
#   quickstart model is trained first (about 7 min on 2 cores).
# Expects the environment of tools/setup_env.sh (./.venv).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
WORK=work_dirs/finetune_demo
BASE=""
while [ $# -gt 0 ]; do
    case "$1" in
        --base-ckpt)
            if [ $# -lt 2 ] || [ ! -f "$2" ]; then
                echo "error: --base-ckpt needs an existing checkpoint file, got '${2:-}'" >&2
                exit 2
            fi
            BASE="$2"; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        -*) echo "error: unknown option '$1' (see --help)" >&2; exit 2 ;;
        *) WORK="$1"; shift ;;
    esac
done
PY="${DAMOYOLO_VENV:-$REPO/.venv}/bin/python"
if [ ! -x "$PY" ]; then
    echo "error: $PY not found; run 'bash tools/setup_env.sh' first" >&2
    exit 1
fi
export PYTHONUNBUFFERED=1
CFG=configs/finetune
DATA=data/demo_newtask

SECONDS=0
# 0. the base model: given, cached, or trained now
if [ -z "$BASE" ] && [ -f "$WORK/quickstart/last_checkpoint" ]; then
    BASE="$(cat "$WORK/quickstart/last_checkpoint")"
fi
if [ -z "$BASE" ]; then
    "$PY" tools/misc/gen_demo_data.py --out-dir data/demo
    "$PY" tools/train.py configs/quickstart/damoyolo_quickstart.py \
        --work-dir "$WORK/quickstart"
    BASE="$(cat "$WORK/quickstart/last_checkpoint")"
fi
echo "base model: $BASE"

# 1. the new task: other images, 3 of the 5 classes, its own COCO files
"$PY" tools/misc/gen_demo_data.py --out-dir $DATA --seed 1 --num-train 80 \
    --num-val 40
for split in train val; do
    "$PY" tools/misc/coco_subset.py $DATA/annotations/instances_$split.json \
        $DATA/annotations/shapes3_$split.json --classes disk triangle cross
done

# 2. fine-tuned from the base model, 3. from random weights (same schedule)
declare -A AP TIME LOAD
for run in finetune scratch; do
    START=$SECONDS
    LOAD_START="$(cut -d' ' -f1 /proc/loadavg)"
    if [ $run = finetune ]; then
        "$PY" tools/train.py $CFG/damoyolo_demo_ns_finetune.py \
            --work-dir "$WORK/$run" --cfg-options "load_from=$BASE"
    else
        "$PY" tools/train.py $CFG/damoyolo_demo_ns_scratch.py \
            --work-dir "$WORK/$run"
    fi
    TIME[$run]=$((SECONDS - START))
    LOAD[$run]="$LOAD_START -> $(cut -d' ' -f1 /proc/loadavg)"
    # 4. evaluation on the new task's val split (CocoMetric)
    "$PY" tools/test.py $CFG/damoyolo_demo_ns_finetune.py \
        "$(cat "$WORK/$run/last_checkpoint")" --work-dir "$WORK/test_$run" \
        2>&1 | tee "$WORK/test_$run.log"
    AP[$run]="$(grep -o 'bbox_mAP_copypaste: .*' "$WORK/test_$run.log" | tail -n1 | cut -d' ' -f2-3 || true)"
    if [ -z "${AP[$run]}" ]; then
        # CocoMetric computes nothing when no box scores above the threshold
        AP[$run]="0.000 0.000 (no detection)"
    fi
done
echo
echo "fine-tuning demo finished in $((SECONDS / 60)) min $((SECONDS % 60)) s" \
    "(load average now: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores)"
echo "bbox mAP / AP50 on $DATA val (disk, triangle, cross), training time (1-min load average before -> after):"
printf '  %-37s %-27s %s s (load %s)\n' \
    "fine-tuned from the quickstart model" "${AP[finetune]}" "${TIME[finetune]}" "${LOAD[finetune]}" \
    "from scratch, same schedule" "${AP[scratch]}" "${TIME[scratch]}" "${LOAD[scratch]}"
