# DAMO-YOLO-S trained with neck-feature distillation from DAMO-YOLO-M.
# Heterogeneous: TinyNAS-Res student, TinyNAS-CSP teacher (necks 128/256/512).
#
# The student recipe is the one of damoyolo_s_coco.py; the teacher is built
# from damoyolo_m_coco.py and a trained checkpoint, which must be given:
#   python tools/train.py configs/distill/damoyolo_s_distill_from_m.py \
#       --cfg-options \
#       teacher_ckpt=work_dirs/damoyolo_m_coco/epoch_300.pth
# Loss: CWD on the aligned, batch-normalised neck outputs; its weight decays
# 1 -> 0.1 (half cosine) over the whole training; the student's gradients
# are clipped to L2 norm 30. Extract the plain student afterwards with
#   python tools/extract_student.py CKPT OUT.pth
_base_ = ['../damoyolo_s_coco.py']

model = dict(
    _delete_=True,
    type='DAMOYOLODistiller',
    student=_base_.model,
    teacher_cfg='{{fileDirname}}/../damoyolo_m_coco.py',
    teacher_ckpt=None,  # required: --cfg-options teacher_ckpt=PATH
    distill_loss=dict(type='NeckDistillLoss', loss='cwd', loss_weight=1.0))

custom_hooks = _base_.get('custom_hooks', []) + [
    # weight 1 -> 0.1 over the whole training (span=None: runner.max_iters)
    dict(type='DistillWeightHook', start_weight=1.0, end_weight=0.1),
    dict(type='DistillGradClipHook', max_norm=30., norm_type=2),
]
