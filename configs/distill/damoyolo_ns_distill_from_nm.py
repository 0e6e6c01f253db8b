# DAMO-YOLO-Ns distilled from DAMO-YOLO-Nm (configs/distill/_base_/distill.py:
# bounded prediction distillation; the official neck CWD, whose align convs
# map the student neck 40/80/160 to the teacher's 64/128/256, on request).
#
# The student recipe is the one of damoyolo_ns_coco.py; the teacher is built
# from damoyolo_nm_coco.py and a trained checkpoint, which must be given:
#   python tools/train.py configs/distill/damoyolo_ns_distill_from_nm.py \
#       --cfg-options \
#       teacher_ckpt=work_dirs/damoyolo_nm_coco/epoch_300.pth
_base_ = ['../damoyolo_ns_coco.py', './_base_/distill.py']

model = dict(
    _base_.distiller,
    _delete_=True,
    student=_base_.model,
    teacher_cfg='{{fileDirname}}/../damoyolo_nm_coco.py')
custom_hooks = _base_.distill_hooks + _base_.custom_hooks
