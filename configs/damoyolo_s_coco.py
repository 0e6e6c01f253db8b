# DAMO-YOLO-S (tinynasL25_S): 16.3 M params / 37.8 GFLOPs at 640.
_base_ = [
    './_base_/models/damoyolo_tinynas_res.py',
    './_base_/datasets/coco_detection.py',
    './_base_/schedules/damoyolo_sgd_300e.py', './_base_/default_runtime.py'
]

img_scale = (640, 640)

model = dict(
    backbone=dict(
        structure='tinynas_L25_k1kx',
        out_indices=(2, 4, 5),
        use_focus=True,
        act_cfg=dict(type='ReLU', inplace=True)),
    neck=dict(
        in_channels=[128, 256, 512],
        out_channels=[128, 256, 512],
        depth=1.0,
        hidden_ratio=0.75,
        act_cfg=dict(type='ReLU', inplace=True)),
    bbox_head=dict(in_channels=[128, 256, 512], reg_max=16,
                   last_kernel_size=3),
    test_cfg=dict(score_thr=0.05, nms=dict(iou_threshold=0.7)))

# ----------------------------- training recipe -----------------------------
# SGD, lr 0.01 per 64 images (scaled with the real batch), nesterov, wd 5e-4;
# 300 epochs (configs/_base_/schedules/). Train and test at 640 px
# without keeping the ratio; mosaic on a 2 x 640 canvas, random affine
# with scale (0.1, 2.0), rotation 10 deg, translation 0.2, shear 2.0 deg;
# MixUp p 0.15; flip; SADA (configs/_base_/datasets/coco_detection.py).
# All of these are the defaults of the dataset base.
