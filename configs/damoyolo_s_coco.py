# DAMO-YOLO-S (tinynasL25_S): 16.3 M params / 37.8 GFLOPs at 640.
_base_ = ['./_base_/models/damoyolo_tinynas_res.py']

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
