# RetinaNet R-18 + RepGFPN trained from scratch on the embedded demo data
# (configs/_base_/datasets/demo_detection.py), 256 px input.
_base_ = [
    './retinanet_r18_repgfpn_1x_coco.py',
    '../../../configs/_base_/datasets/demo_detection.py'
]

data_root = _base_.demo_data_root
img_scale = (256, 256)
max_epochs = 12

model = dict(
    # from scratch: nothing frozen, BN statistics are learnt
    backbone=dict(frozen_stages=-1, norm_eval=False),
    bbox_head=dict(num_classes=len(_base_.metainfo['classes'])))

train_pipeline = [
    dict(t, scale=img_scale) if t['type'] == 'Resize' else t
    for t in _base_.train_pipeline
]
test_pipeline = [
    dict(t, scale=img_scale) if t['type'] == 'Resize' else t
    for t in _base_.test_pipeline
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        **_base_.demo_train_data,
        filter_cfg=dict(min_size=4),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(**_base_.demo_val_data, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = _base_.demo_val_evaluator
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=max_epochs, val_interval=4)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[8, 11], gamma=0.1),
]
optim_wrapper = dict(
    optimizer=dict(lr=0.01), clip_grad=dict(max_norm=35, norm_type=2))
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=4, max_keep_ckpts=1))
log_processor = dict(window_size=10)
