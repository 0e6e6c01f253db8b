# Demo of the distillation recipe on the embedded demo data (5 shape
# classes, 160 train / 40 val images of about 320x320 px, written by
#   python tools/misc/gen_demo_data.py --out-dir data/demo):
# DAMO-YOLO-Ns trained from scratch WITHOUT a teacher (the baseline of
# damoyolo_demo_ns_distill_from_nm.py). Sized for a shared 2-core CPU: the
# images are resized to 160 px, batch 16, 30 epochs (300 iterations), no
# mosaic/mixup. Paths are relative to the repository.
_base_ = [
    '../_base_/models/damoyolo_tinynas_nano.py',
    '../_base_/datasets/demo_detection.py',
    '../_base_/default_runtime.py',
]

input_size = (160, 160)
max_epochs = 30
warmup_epochs = 2
num_last_epochs = 3
base_lr = 0.004

# DAMO-YOLO-Ns (values of configs/damoyolo_ns_coco.py), 5 classes
model = dict(
    backbone=dict(structure='tinynas_nano_small'),
    neck=dict(in_channels=[40, 80, 160], out_channels=[40, 80, 160]),
    bbox_head=dict(num_classes=5, in_channels=[40, 80, 160]),
    # evaluate with a low score threshold (COCO-style AP); after only 300
    # iterations few scores pass DAMO-YOLO-Ns's deployment threshold 0.03
    test_cfg=dict(score_thr=0.001, max_per_img=100))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=input_size, keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='Resize', scale=input_size, keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=_base_.dataset_type,
        data_root=_base_.data_root,
        metainfo=_base_.metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=False),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=_base_.dataset_type,
        data_root=_base_.data_root,
        metainfo=_base_.metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoMetric',
    ann_file=_base_.data_root + 'annotations/instances_val.json',
    metric='bbox')
test_evaluator = val_evaluator

train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# AdamW as DAMO-YOLO's nano recipe; no weight decay on norms and biases
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=base_lr, weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))
param_scheduler = [
    dict(type='QuadraticWarmupLR', by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.05, begin=warmup_epochs,
         T_max=max_epochs - num_last_epochs - warmup_epochs,
         end=max_epochs - num_last_epochs, by_epoch=True,
         convert_to_iter_based=True),
    dict(type='ConstantLR', by_epoch=True, factor=1,
         begin=max_epochs - num_last_epochs, end=max_epochs),
]
custom_hooks = [
    dict(type='CheckFiniteLossHook'),
    # DAMO-YOLO's EMA ramp, with a window suited to ~300 iterations
    dict(type='EMAHook', ema_type='DAMOYOLOEMA', momentum=0.01, gamma=50,
         update_buffers=True, priority=49),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=1,
                    save_best='coco/bbox_mAP', rule='greater'),
    visualization=dict(type='DetVisualizationHook'))
log_processor = dict(type='LogProcessor', window_size=5, by_epoch=True)
auto_scale_lr = dict(enable=False, base_batch_size=64)
