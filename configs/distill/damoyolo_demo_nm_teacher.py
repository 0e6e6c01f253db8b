# Demo teacher: DAMO-YOLO-Nm on the embedded demo data, the recipe of
# damoyolo_demo_ns.py (the quickstart recipe) for twice as many epochs
# (110): a teacher clearly stronger than its student (docs/distill.md).
# Train it first, then distill damoyolo_demo_ns_distill_from_nm.py from
# its checkpoint.
_base_ = ['./damoyolo_demo_ns.py']

# DAMO-YOLO-Nm (values of configs/damoyolo_nm_coco.py), 5 classes
model = dict(
    backbone=dict(structure='tinynas_nano_middle'),
    neck=dict(in_channels=[64, 128, 256], out_channels=[64, 128, 256]),
    bbox_head=dict(in_channels=[64, 128, 256]))

# the quickstart schedule stretched to 110 epochs (warm-up, cosine, the
# last 10 epochs without mosaic at a constant learning rate)
max_epochs = 110
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    _base_.param_scheduler[0],
    dict(_base_.param_scheduler[1],
         T_max=max_epochs - _base_.num_last_epochs - _base_.warmup_epochs,
         end=max_epochs - _base_.num_last_epochs),
    dict(_base_.param_scheduler[2], begin=max_epochs - _base_.num_last_epochs,
         end=max_epochs),
]
custom_hooks = [
    dict(h, switch_epoch=max_epochs - _base_.num_last_epochs)
    if h['type'] == 'PipelineSwitchHook' else h for h in _base_.custom_hooks
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
