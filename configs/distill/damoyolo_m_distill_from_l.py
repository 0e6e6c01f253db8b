# DAMO-YOLO-M distilled from DAMO-YOLO-L (configs/distill/_base_/distill.py).
# Both CSP backbones (TinyNAS-CSP); neck channels 128/256/512 on both sides.
#
# The student recipe is the one of damoyolo_m_coco.py; the teacher is built
# from damoyolo_l_coco.py and a trained checkpoint, which must be given:
#   python tools/train.py configs/distill/damoyolo_m_distill_from_l.py \
#       --cfg-options \
#       teacher_ckpt=work_dirs/damoyolo_l_coco/epoch_300.pth
_base_ = ['../damoyolo_m_coco.py', './_base_/distill.py']

model = dict(
    _base_.distiller,
    _delete_=True,
    student=_base_.model,
    teacher_cfg='{{fileDirname}}/../damoyolo_l_coco.py')
custom_hooks = _base_.distill_hooks + _base_.custom_hooks
