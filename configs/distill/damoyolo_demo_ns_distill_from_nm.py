# Demo distillation: DAMO-YOLO-Ns (damoyolo_demo_ns.py recipe) distilled
# from the demo Nm teacher (damoyolo_demo_nm_teacher.py), as
# configs/distill/damoyolo_ns_distill_from_nm.py
# (configs/distill/_base_/distill.py):
#   python tools/train.py configs/distill/damoyolo_demo_ns_distill_from_nm.py \
#       --cfg-options \
#       teacher_ckpt=work_dirs/distill_demo/teacher/epoch_110.pth
_base_ = ['./damoyolo_demo_ns.py', './_base_/distill.py']

model = dict(
    _base_.distiller,
    _delete_=True,
    student=_base_.model,
    teacher_cfg='{{fileDirname}}/damoyolo_demo_nm_teacher.py')
custom_hooks = _base_.distill_hooks + _base_.custom_hooks
