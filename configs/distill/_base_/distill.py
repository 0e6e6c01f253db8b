# Distillation of a DAMO-YOLO student from a trained teacher (see
# docs/distill.md). Default: the teacher's predictions (class scores and
# box-side distributions of its head, HeadDistillLoss) are soft targets for
# the student's head; `balance` keeps the distillation gradient at most
# `max_ratio` times the detection gradient where both losses read the head
# outputs (per level and map), so the weight can stay at 1 for the whole
# training; the student's gradients are clipped to L2 norm 30 as in
# DAMO-YOLO. DAMO-YOLO's own distillation (CWD on the aligned,
# batch-normalised neck outputs, unbounded, weight decaying 1 -> 0.1 over
# the whole training), reproduced exactly:
#   --cfg-options model.distill_loss=cwd model.head_distill=None \
#       model.balance=None custom_hooks.0.end_weight=0.1
# A distillation config lists this file beside its student config (the
# distillation hooks first, so that custom_hooks.0 is the weight hook):
#   model = dict(_base_.distiller, _delete_=True, student=_base_.model,
#                teacher_cfg=...)
#   custom_hooks = _base_.distill_hooks + _base_.custom_hooks
# (mmengine refuses a key defined by two sibling bases, hence the names).
# Extract the plain student afterwards with
#   python tools/extract_student.py CKPT OUT.pth
distiller = dict(
    type='DAMOYOLODistiller',
    teacher_ckpt=None,  # required: --cfg-options teacher_ckpt=PATH
    distill_loss=None,  # neck features: 'cwd' (DAMO-YOLO), 'mimic', 'mgd'
    head_distill=dict(type='HeadDistillLoss'),
    balance=dict(type='grad_norm', max_ratio=0.5))
distill_hooks = [
    # constant weight 1 (DAMO-YOLO: end_weight=0.1, a half-cosine decay over
    # the whole training, span=None: runner.max_iters)
    dict(type='DistillWeightHook', start_weight=1.0, end_weight=1.0),
    dict(type='DistillGradClipHook', max_norm=30., norm_type=2),
]
