# Quickstart: DAMO-YOLO-Ns trained from scratch on the embedded demo data
# (configs/_base_/datasets/demo_detection.py), evaluated with CocoMetric on
# its val split. Sized for a 2-core CPU (about 0.3 s per iteration there,
# 1 100 iterations, ~6.5 min in all).
#
# What differs from the full recipe (configs/damoyolo_ns_coco.py) and why:
# * input 224 px (train and test, no ratio kept): the demo images are ~320 px
#   and CPU time grows with the square of the size;
# * DAMO-YOLO's mosaic + random affine (scale 0.5-1.5, translation 0.1) on
#   a 2 x 224 canvas, no MixUp; flip and SADA as in the full recipe; the last
#   10 epochs without mosaic / affine (PipelineSwitchHook);
# * batch 8, AdamW lr 0.008 (no batch scaling), 1 warm-up epoch, cosine to
#   0.05 x lr, then flat for the last 10 epochs; 55 epochs in all;
# * EMA with a short ramp (gamma 50 iterations, final momentum 0.01);
# * channels-last weights (MemoryFormatHook): the depthwise convolutions of
#   the Nano model train several times faster on CPU in that layout;
# * one evaluation, at the end; no best-checkpoint tracking.
_base_ = [
    '../damoyolo_ns_coco.py', '../_base_/datasets/demo_detection.py'
]

data_root = _base_.demo_data_root
img_scale = (224, 224)
mosaic_size = img_scale
mosaic_scale = (0.5, 1.5)
max_epochs = 55
warmup_epochs = 1
num_last_epochs = 10
base_lr = 0.008

model = dict(bbox_head=dict(num_classes=len(_base_.metainfo['classes'])))

# the base's transforms with the values above (and no MixUp)
train_pipeline_tail = [
    dict(t, scale=img_scale) if t['type'] == 'Resize' else t
    for t in _base_.train_pipeline_tail
]
train_pipeline = [
    dict(t, img_scale=mosaic_size) if t['type'] == 'DAMOYOLOMosaic' else
    dict(t, img_scale=mosaic_size, scaling_ratio_range=mosaic_scale,
         max_translate_ratio=0.1) for t in _base_.train_pipeline
    if t['type'] in ('DAMOYOLOMosaic', 'DAMOYOLORandomAffine')
] + train_pipeline_tail
test_pipeline = [
    dict(t, scale=img_scale) if t['type'] == 'Resize' else t
    for t in _base_.test_pipeline
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    pin_memory=False,
    dataset=dict(
        dataset=dict(
            **_base_.demo_train_data,
            filter_cfg=dict(filter_empty_gt=False)),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(**_base_.demo_val_data, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = _base_.demo_val_evaluator
test_evaluator = val_evaluator

train_cfg = dict(
    max_epochs=max_epochs, val_interval=max_epochs, dynamic_intervals=None)
optim_wrapper = dict(optimizer=dict(lr=base_lr))
auto_scale_lr = dict(enable=False)
param_scheduler = [
    dict(_base_.param_scheduler[0], end=warmup_epochs),
    dict(
        _base_.param_scheduler[1],
        begin=warmup_epochs,
        T_max=max_epochs - num_last_epochs - warmup_epochs,
        end=max_epochs - num_last_epochs),
    dict(
        _base_.param_scheduler[2],
        begin=max_epochs - num_last_epochs,
        end=max_epochs),
]
custom_hooks = [
    dict(h, momentum=0.01, gamma=50) if h['type'] == 'EMAHook' else dict(
        h,
        switch_epoch=max_epochs - num_last_epochs,
        switch_pipeline=train_pipeline_tail)
    if h['type'] == 'PipelineSwitchHook' else h for h in _base_.custom_hooks
]
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1, save_best=None))
log_processor = dict(window_size=10)
# a fixed seed: the same figures on every run (CPU kernels are deterministic)
randomness = dict(seed=0)
