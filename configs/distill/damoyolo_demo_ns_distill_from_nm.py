# Demo distillation: DAMO-YOLO-Ns (damoyolo_demo_ns.py recipe) trained with
# the neck features of the demo Nm teacher (damoyolo_demo_nm_teacher.py):
#   python tools/train.py configs/distill/damoyolo_demo_ns_distill_from_nm.py \
#       --cfg-options \
#       teacher_ckpt=work_dirs/distill_demo/teacher/epoch_55.pth
# CWD loss, weight 1 -> 0.1 over the training, student gradients clipped to
# L2 norm 30, as in configs/distill/damoyolo_ns_distill_from_nm.py.
_base_ = ['./damoyolo_demo_ns.py']

model = dict(
    _delete_=True,
    type='DAMOYOLODistiller',
    student=_base_.model,
    teacher_cfg='{{fileDirname}}/damoyolo_demo_nm_teacher.py',
    teacher_ckpt=None,  # required: --cfg-options teacher_ckpt=PATH
    distill_loss=dict(type='NeckDistillLoss', loss='cwd', loss_weight=1.0))

custom_hooks = _base_.custom_hooks + [
    dict(type='DistillWeightHook', start_weight=1.0, end_weight=0.1),
    dict(type='DistillGradClipHook', max_norm=30., norm_type=2),
]
