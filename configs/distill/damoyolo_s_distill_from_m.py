# DAMO-YOLO-S distilled from DAMO-YOLO-M (configs/distill/_base_/distill.py).
# Heterogeneous: TinyNAS-Res student, TinyNAS-CSP teacher (necks 128/256/512).
#
# The student recipe is the one of damoyolo_s_coco.py; the teacher is built
# from damoyolo_m_coco.py and a trained checkpoint, which must be given:
#   python tools/train.py configs/distill/damoyolo_s_distill_from_m.py \
#       --cfg-options \
#       teacher_ckpt=work_dirs/damoyolo_m_coco/epoch_300.pth
_base_ = ['../damoyolo_s_coco.py', './_base_/distill.py']

model = dict(
    _base_.distiller,
    _delete_=True,
    student=_base_.model,
    teacher_cfg='{{fileDirname}}/../damoyolo_m_coco.py')
custom_hooks = _base_.distill_hooks + _base_.custom_hooks
