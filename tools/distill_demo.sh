#!/usr/bin/env bash
# The distillation demo on the embedded demo data (no download):
#   train a teacher -> distill a student from it -> extract the plain
#   student -> evaluate teacher, distilled student and (unless given with
#   --baseline CKPT) the same student trained without a teacher, all on the
#   quickstart recipe (the teacher for twice as many epochs), and print the
#   three bbox APs. The student is distilled with the default of the
#   distillation configs (bounded prediction distillation, docs/distill.md).
# Usage: bash tools/distill_demo.sh [WORK_DIR] [--pair nano|hetero]
#                                   [--baseline CKPT] [--seed N]
#   --pair nano (default): DAMO-YOLO-Nm teacher -> DAMO-YOLO-Ns student;
#   --pair hetero: TinyNAS-CSP (M-style) teacher -> TinyNAS-Res (T-style)
#   student. WORK_DIR defaults to work_dirs/distill_demo[_hetero]. The nano
#   baseline is the quickstart model: pass the checkpoint of a finished
#   `bash tools/quickstart.sh` to skip training it again. --seed N (default
#   0, the configs' seed) trains both students with seed N; the teacher
#   keeps seed 0 and is reused from WORK_DIR/teacher when it is there.
# Expects the environment of tools/setup_env.sh (./.venv).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
WORK=""
BASELINE=""
SEED=0
PAIR=nano
while [ $# -gt 0 ]; do
    case "$1" in
        --baseline)
            if [ $# -lt 2 ] || [ ! -f "$2" ]; then
                echo "error: --baseline needs an existing checkpoint file, got '${2:-}'" >&2
                exit 2
            fi
            BASELINE="$2"; shift 2 ;;
        --seed)
            if [ $# -lt 2 ] || ! [[ "$2" =~ ^[0-9]+$ ]]; then
                echo "error: --seed needs a non-negative integer, got '${2:-}'" >&2
                exit 2
            fi
            SEED="$2"; shift 2 ;;
        --pair)
            if [ $# -lt 2 ] || ! [[ "$2" =~ ^(nano|hetero)$ ]]; then
                echo "error: --pair needs 'nano' or 'hetero', got '${2:-}'" >&2
                exit 2
            fi
            PAIR="$2"; shift 2 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) WORK="$1"; shift ;;
    esac
done
PY="${DAMOYOLO_VENV:-$REPO/.venv}/bin/python"
if [ ! -x "$PY" ]; then
    echo "error: $PY not found; run 'bash tools/setup_env.sh' first" >&2
    exit 1
fi
export PYTHONUNBUFFERED=1
CFG=configs/distill
if [ "$PAIR" = nano ]; then
    WORK="${WORK:-work_dirs/distill_demo}"
    TEACHER_CFG=$CFG/damoyolo_demo_nm_teacher.py
    DISTILL_CFG=$CFG/damoyolo_demo_ns_distill_from_nm.py
    STUDENT_CFG=$CFG/damoyolo_demo_ns.py
    NAMES=("teacher Nm" "student Ns, distilled" "student Ns, no teacher")
else
    WORK="${WORK:-work_dirs/distill_demo_hetero}"
    TEACHER_CFG=$CFG/damoyolo_demo_csp_teacher.py
    DISTILL_CFG=$CFG/damoyolo_demo_res_distill_from_csp.py
    STUDENT_CFG=$CFG/damoyolo_demo_res.py
    NAMES=("teacher CSP (M-style)" "student Res (T-style), distilled"
           "student Res, no teacher")
fi

SECONDS=0
"$PY" tools/misc/gen_demo_data.py --out-dir data/demo

# 1. teacher (reused when a finished one is in WORK_DIR/teacher)
TEACHER=""
if [ -f "$WORK/teacher/last_checkpoint" ]; then
    TEACHER="$(cat "$WORK/teacher/last_checkpoint")"
    [ -f "$TEACHER" ] && echo "reusing the teacher $TEACHER" || TEACHER=""
fi
if [ -z "$TEACHER" ]; then
    "$PY" tools/train.py $TEACHER_CFG --work-dir "$WORK/teacher"
    TEACHER="$(cat "$WORK/teacher/last_checkpoint")"
fi
# 2. distilled student, then the plain student checkpoint from it
S="seed$SEED"
"$PY" tools/train.py $DISTILL_CFG \
    --work-dir "$WORK/student_distilled_$S" \
    --cfg-options "teacher_ckpt=$TEACHER" "randomness.seed=$SEED"
"$PY" tools/extract_student.py "$(cat "$WORK/student_distilled_$S/last_checkpoint")" \
    "$WORK/student_distilled_$S.pth" --check-config $STUDENT_CFG
# 3. baseline: the same student without a teacher
if [ -z "$BASELINE" ]; then
    "$PY" tools/train.py $STUDENT_CFG --work-dir "$WORK/student_baseline_$S" \
        --cfg-options "randomness.seed=$SEED"
    BASELINE="$(cat "$WORK/student_baseline_$S/last_checkpoint")"
fi

# evaluate the three on the val split; keep each CocoMetric summary
declare -A AP
for run in teacher:$TEACHER_CFG:$TEACHER \
           student_distilled:$STUDENT_CFG:$WORK/student_distilled_$S.pth \
           student_baseline:$STUDENT_CFG:$BASELINE; do
    IFS=: read -r name config ckpt <<< "$run"
    "$PY" tools/test.py "$config" "$ckpt" --work-dir "$WORK/test_$name" \
        2>&1 | tee "$WORK/test_$name.log"
    AP[$name]="$(grep -o 'bbox_mAP_copypaste: .*' "$WORK/test_$name.log" | tail -n1 | cut -d' ' -f2-3)"
done
echo
echo "distillation demo finished in $((SECONDS / 60)) min $((SECONDS % 60)) s"
echo "bbox mAP / AP50 on data/demo val (students: seed $SEED):"
printf '  %-34s %s\n' "${NAMES[0]}" "${AP[teacher]}" \
    "${NAMES[1]}" "${AP[student_distilled]}" \
    "${NAMES[2]}" "${AP[student_baseline]}"
