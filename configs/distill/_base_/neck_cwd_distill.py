# Neck-feature distillation as DAMO-YOLO trains it: CWD loss on the aligned,
# batch-normalised neck outputs; its weight decays 1 -> 0.1 (half cosine)
# over the whole training; the student's gradients are clipped to L2 norm
# 30. One addition (docs/distill.md): `balance` scales the distillation
# gradient reaching the student's neck outputs down to at most `max_ratio`
# times the detection gradient there (per level, L2 norm), for any optimizer.
# `balance=None` is the exact official distillation:
#   --cfg-options model.balance=None
# A distillation config lists this file beside its student config:
#   model = dict(_base_.distiller, _delete_=True, student=_base_.model,
#                teacher_cfg=...)
#   custom_hooks = _base_.custom_hooks + _base_.distill_hooks
# (mmengine refuses a key defined by two sibling bases, hence the names).
# Extract the plain student afterwards with
#   python tools/extract_student.py CKPT OUT.pth
distiller = dict(
    type='DAMOYOLODistiller',
    teacher_ckpt=None,  # required: --cfg-options teacher_ckpt=PATH
    distill_loss=dict(type='NeckDistillLoss', loss='cwd', loss_weight=1.0),
    balance=dict(type='grad_norm', max_ratio=0.5))
distill_hooks = [
    # weight 1 -> 0.1 over the whole training (span=None: runner.max_iters)
    dict(type='DistillWeightHook', start_weight=1.0, end_weight=0.1),
    dict(type='DistillGradClipHook', max_norm=30., norm_type=2),
]
