# DAMO-YOLO-T (tinynasL20_T): 8.5 M params / 18.1 GFLOPs at 640.
_base_ = [
    './_base_/models/damoyolo_tinynas_res.py',
    './_base_/datasets/coco_detection.py',
    './_base_/schedules/damoyolo_sgd_300e.py', './_base_/default_runtime.py'
]

img_scale = (640, 640)

model = dict(
    backbone=dict(
        structure='tinynas_L20_k1kx',
        out_indices=(2, 4, 5),
        use_focus=True,
        act_cfg=dict(type='ReLU', inplace=True)),
    neck=dict(
        in_channels=[96, 192, 384],
        out_channels=[64, 128, 256],
        depth=1.0,
        hidden_ratio=1.0,
        act_cfg=dict(type='ReLU', inplace=True)),
    bbox_head=dict(in_channels=[64, 128, 256], reg_max=16,
                   last_kernel_size=3),
    test_cfg=dict(score_thr=0.05, nms=dict(iou_threshold=0.7)))

# ----------------------------- training recipe -----------------------------
# SGD, lr 0.01 per 64 images (scaled with the real batch), nesterov, wd 5e-4;
# 300 epochs (configs/_base_/schedules/). Train and test at 640 px
# without keeping the ratio; mosaic on a 2 x 640 canvas, random affine
# with scale (0.1, 2.0), rotation 10 deg, translation 0.2, shear 0.2 deg;
# MixUp p 0.15; flip; SADA (configs/_base_/datasets/coco_detection.py).
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
    *_base_.train_pipeline_tail,
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
