# COCO detection data with DAMO-YOLO's augmentation; the training recipe of
# every variant is written here once.
#
# Per image (training): 4-image mosaic on a 2x canvas (every image stretched
# to `mosaic_size`) -> random affine about the mosaic centre to
# `mosaic_size` (scale `mosaic_scale`, rotation 10 deg, translation 0.2,
# shear `max_shear_degree`) -> MixUp with p 0.15 -> boxes with area <= 4
# dropped -> resize to `img_scale` without keeping the ratio -> flip 0.5 ->
# SADA (box-level scale-aware augmentation, probability ramped with the
# training progress by SADAProgressHook). The last 16 epochs use only the
# part after the MixUp (PipelineSwitchHook). Pixels stay raw RGB 0..255: the
# model's data_preprocessor uses mean 0, std 1, bgr_to_rgb=True.
#
# The values below are those of S / M / L. A variant that changes one of
# `img_scale`, `mosaic_scale`, `max_shear_degree` restates only that value
# and rebuilds, from the lists here, the transforms that read it
# (`dict(t, key=value) if t['type'] == ... else t`): T (shear 0.2), the
# Nano variants Nm / Nl (416 px, shear 0.2) and Ns (as Nm, scale
# (0.75, 1.25)). Schedules: configs/_base_/schedules/ (SGD for T / S / M /
# L, AdamW for the Nano variants).
dataset_type = 'DAMOYOLOCocoDataset'
data_root = 'data/coco/'
backend_args = None

img_scale = (640, 640)  # (w, h) of the network input, train and test
mosaic_size = (640, 640)  # (w, h) of one mosaic cell and of the affine output
mosaic_scale = (0.1, 2.0)
max_shear_degree = 2.0

# applied to every image read by the mosaic / mixup (and in the tail)
train_load_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
]
# shared by the full pipeline and the no-augmentation tail
train_pipeline_tail = [
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='SADA',
        box_prob=0.3,
        num_subpolicies=5,
        scale_splits=(2048, 10240, 51200)),
    dict(type='PackDetInputs'),
]
train_pipeline = [
    dict(type='DAMOYOLOMosaic', img_scale=mosaic_size, pad_val=114.0),
    dict(
        type='DAMOYOLORandomAffine',
        img_scale=mosaic_size,
        scaling_ratio_range=mosaic_scale,
        max_rotate_degree=10.0,
        max_translate_ratio=0.2,
        max_shear_degree=max_shear_degree),
    dict(
        type='DAMOYOLOMixUp',
        img_scale=mosaic_size,
        ratio_range=(0.5, 1.5),
        prob=0.15,
        pad_val=114.0),
    *train_pipeline_tail,
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]

train_dataloader = dict(
    batch_size=32,  # x 8 GPUs = 256, the reference batch
    num_workers=8,
    # persistent workers keep their random state across epochs; SADA's
    # progress reaches them through shared memory
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        # mmdet's MultiImageMixDataset without its deep copies
        type='DAMOYOLOMixDataset',
        dataset=dict(
            type=dataset_type,
            data_root=data_root,
            ann_file='annotations/instances_train2017.json',
            data_prefix=dict(img='train2017/'),
            # the reference trains on every image, also those without boxes
            filter_cfg=dict(filter_empty_gt=False, min_size=0),
            pipeline=train_load_pipeline,
            backend_args=backend_args),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_val2017.json',
    metric='bbox',
    backend_args=backend_args)
test_evaluator = val_evaluator

# Training hooks of the recipe (here because the switch needs the pipeline).
custom_hooks = [
    # an official DAMO-YOLO checkpoint as load_from: converted in memory
    # before the EMA hook reads it (the detector converts it by itself
    # wherever else a checkpoint is loaded)
    dict(type='OfficialCheckpointHook'),
    # channels-last weights: on CPU the training step is ~25 % faster (T at
    # 320 px) and the Nano models' depthwise convolutions several times
    # faster; checkpoints are layout-free
    dict(type='MemoryFormatHook', memory_format='channels_last'),
    # raise at the first NaN / inf loss, naming the iteration and the keys
    dict(type='CheckFiniteLossHook', interval=1),
    # EMA: decay 0.9998 * (1 - exp(-iter / 2000)); evaluated and saved
    dict(
        type='EMAHook',
        ema_type='DAMOYOLOEMA',
        momentum=0.0002,
        gamma=2000,
        update_buffers=True,
        priority=49),
    # the last 16 epochs without mosaic / affine / mixup
    dict(
        type='PipelineSwitchHook',
        switch_epoch=300 - 16,  # max_epochs - num_last_epochs of the schedule
        switch_pipeline=train_pipeline_tail),
    dict(type='SADAProgressHook'),
]
