# DAMO-YOLO-T distilled from DAMO-YOLO-S (configs/distill/_base_/distill.py).
# With the official neck CWD, the student neck 64/128/256 is aligned to the
# teacher's 128/256/512 by 1x1 convs.
#
# The student recipe is the one of damoyolo_t_coco.py; the teacher is built
# from damoyolo_s_coco.py and a trained checkpoint, which must be given:
#   python tools/train.py configs/distill/damoyolo_t_distill_from_s.py \
#       --cfg-options \
#       teacher_ckpt=work_dirs/damoyolo_s_coco/epoch_300.pth
_base_ = ['../damoyolo_t_coco.py', './_base_/distill.py']

model = dict(
    _base_.distiller,
    _delete_=True,
    student=_base_.model,
    teacher_cfg='{{fileDirname}}/../damoyolo_s_coco.py')
custom_hooks = _base_.distill_hooks + _base_.custom_hooks
