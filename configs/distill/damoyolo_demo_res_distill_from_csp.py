# Demo distillation of a heterogeneous pair: the residual (T-style) student
# damoyolo_demo_res.py distilled from the CSP (M-style) teacher
# damoyolo_demo_csp_teacher.py (other backbone style, activation and neck
# widths; with the official neck CWD the align convolutions map 32/64/128
# to 64/128/256):
#   python tools/train.py configs/distill/damoyolo_demo_res_distill_from_csp.py \
#       --cfg-options \
#       teacher_ckpt=work_dirs/distill_demo_hetero/teacher/epoch_110.pth
_base_ = ['./damoyolo_demo_res.py', './_base_/distill.py']

model = dict(
    _base_.distiller,
    _delete_=True,
    student=_base_.model,
    teacher_cfg='{{fileDirname}}/damoyolo_demo_csp_teacher.py')
custom_hooks = _base_.distill_hooks + _base_.custom_hooks
