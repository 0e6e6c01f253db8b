# DAMO-YOLO-Nl (tinynasL20_Nl): 5.69 M params / 6.04 GFLOPs at 416.
_base_ = [
    './_base_/models/damoyolo_tinynas_nano.py',
    './_base_/datasets/coco_detection.py',
    './_base_/schedules/damoyolo_adamw_300e.py', './_base_/default_runtime.py'
]

img_scale = (416, 416)

model = dict(
    backbone=dict(
        structure='tinynas_nano_large',
        out_indices=(2, 4, 5),
        use_focus=False,
        depthwise=True,
        use_se=False,
        act_cfg=dict(type='SiLU', inplace=True)),
    neck=dict(
        in_channels=[80, 160, 320],
        out_channels=[80, 160, 320],
        depth=0.5,
        hidden_ratio=0.5,
        block_type='mobile',
        act_cfg=dict(type='SiLU', inplace=True)),
    bbox_head=dict(in_channels=[80, 160, 320], reg_max=7, last_kernel_size=1),
    test_cfg=dict(score_thr=0.03, nms=dict(iou_threshold=0.65)))

# ----------------------------- training recipe -----------------------------
# AdamW, lr 0.001 per 64 images (scaled with the real batch), wd 0.01;
# 300 epochs (configs/_base_/schedules/). Train and test at 416 px
# without keeping the ratio; mosaic on a 2 x 640 canvas, random affine
# with scale (0.1, 2.0), rotation 10 deg, translation 0.2, shear 0.2 deg;
# MixUp p 0.15; flip; SADA (configs/_base_/datasets/coco_detection.py).
# the resize of the training tail and of the test pipeline: img_scale
train_pipeline_tail = [
    dict(t, scale=img_scale) if t['type'] == 'Resize' else t
    for t in _base_.train_pipeline_tail
]
test_pipeline = [
    dict(t, scale=img_scale) if t['type'] == 'Resize' else t
    for t in _base_.test_pipeline
]
train_pipeline = [
    dict(type='DAMOYOLOMosaic', img_scale=(640, 640), pad_val=114.0),
    dict(
        type='DAMOYOLORandomAffine',
        img_scale=(640, 640),
        scaling_ratio_range=(0.1, 2.0),
        max_rotate_degree=10.0,
        max_translate_ratio=0.2,
        max_shear_degree=0.2),
    dict(
        type='DAMOYOLOMixUp',
        img_scale=(640, 640),
        ratio_range=(0.5, 1.5),
        prob=0.15,
        pad_val=114.0),
    *train_pipeline_tail,
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
# the no-augmentation tail of the last 16 epochs uses the 416 px resize too
custom_hooks = [
    dict(h, switch_pipeline=train_pipeline_tail)
    if h['type'] == 'PipelineSwitchHook' else h
    for h in _base_.custom_hooks
]
