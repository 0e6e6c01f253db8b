# Demo of the distillation recipe on the embedded demo data (5 shape
# classes, 160 train / 40 val images of about 320x320 px, written by
#   python tools/misc/gen_demo_data.py --out-dir data/demo):
# the student baseline, DAMO-YOLO-Ns trained from scratch WITHOUT a teacher.
# It is the quickstart recipe unchanged (224 px, batch 8, AdamW, mosaic +
# random affine, EMA, fixed seed; see configs/quickstart/), so the teacher
# (damoyolo_demo_nm_teacher.py) and the distilled student
# (damoyolo_demo_ns_distill_from_nm.py) share data, schedule and seed with it.
_base_ = ['../quickstart/damoyolo_quickstart.py']
