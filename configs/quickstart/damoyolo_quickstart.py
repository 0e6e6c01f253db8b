# Quickstart: DAMO-YOLO-Ns trained from scratch on the embedded demo data
# (5 shape classes, 160 train / 40 val images of about 320x320 px, written by
#   python tools/misc/gen_demo_data.py --out-dir data/demo),
# evaluated with CocoMetric on the val split. Sized for a 2-core CPU
# (about 0.3 s per iteration there, 1 100 iterations, ~6.5 min in all).
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
_base_ = ['../damoyolo_ns_coco.py']

data_root = 'data/demo/'
classes = ('disk', 'rectangle', 'triangle', 'ring', 'cross')
metainfo = dict(
    classes=classes,
    palette=[(220, 20, 60), (0, 130, 200), (60, 180, 75), (255, 165, 0),
             (145, 30, 180)])
input_size = (224, 224)
max_epochs = 55
warmup_epochs = 1
num_last_epochs = 10
base_lr = 0.008

model = dict(bbox_head=dict(num_classes=len(classes)))

train_load_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
]
# the end of the training pipeline, also the whole per-image pipeline of the
# last `num_last_epochs` epochs
train_pipeline_tail = [
    dict(type='Resize', scale=input_size, keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='SADA'),
    dict(type='PackDetInputs'),
]
train_pipeline = [
    dict(type='DAMOYOLOMosaic', img_scale=input_size, pad_val=114.0),
    dict(
        type='DAMOYOLORandomAffine',
        img_scale=input_size,
        scaling_ratio_range=(0.5, 1.5),
        max_rotate_degree=10.0,
        max_translate_ratio=0.1,
        max_shear_degree=0.2),
    *train_pipeline_tail,
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=input_size, keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    pin_memory=False,
    dataset=dict(
        _delete_=True,
        type='MultiImageMixDataset',
        dataset=dict(
            type='DAMOYOLOCocoDataset',
            data_root=data_root,
            metainfo=metainfo,
            ann_file='annotations/instances_train.json',
            data_prefix=dict(img='train/'),
            filter_cfg=dict(filter_empty_gt=False),
            pipeline=train_load_pipeline),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

train_cfg = dict(
    max_epochs=max_epochs, val_interval=max_epochs, dynamic_intervals=None)
optim_wrapper = dict(optimizer=dict(lr=base_lr))
auto_scale_lr = dict(enable=False)
param_scheduler = [
    dict(
        type='QuadraticWarmupLR',
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        eta_min_ratio=0.05,
        begin=warmup_epochs,
        T_max=max_epochs - num_last_epochs - warmup_epochs,
        end=max_epochs - num_last_epochs,
        by_epoch=True,
        convert_to_iter_based=True),
    dict(
        type='ConstantLR',
        by_epoch=True,
        factor=1,
        begin=max_epochs - num_last_epochs,
        end=max_epochs),
]
custom_hooks = [
    dict(type='OfficialCheckpointHook'),
    dict(type='MemoryFormatHook', memory_format='channels_last'),
    dict(type='CheckFiniteLossHook'),
    dict(
        type='EMAHook',
        ema_type='DAMOYOLOEMA',
        momentum=0.01,
        gamma=50,
        update_buffers=True,
        priority=49),
    dict(
        type='PipelineSwitchHook',
        switch_epoch=max_epochs - num_last_epochs,
        switch_pipeline=train_pipeline_tail),
    dict(type='SADAProgressHook'),
]
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1, save_best=None))
log_processor = dict(window_size=10)
# a fixed seed: the same figures on every run (CPU kernels are deterministic)
randomness = dict(seed=0)
