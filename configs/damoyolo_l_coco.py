# DAMO-YOLO-L (tinynasL45_L): 42.1 M params / 97.3 GFLOPs at 640.
_base_ = ['./_base_/models/damoyolo_tinynas_csp.py']

img_scale = (640, 640)

model = dict(
    backbone=dict(
        structure='tinynas_L45_kxkx',
        out_indices=(2, 3, 4),
        use_focus=True,
        act_cfg=dict(type='SiLU', inplace=True)),
    neck=dict(
        in_channels=[128, 256, 512],
        out_channels=[128, 256, 512],
        depth=2.0,
        hidden_ratio=1.0,
        act_cfg=dict(type='SiLU', inplace=True)),
    bbox_head=dict(in_channels=[128, 256, 512], reg_max=16,
                   last_kernel_size=3),
    test_cfg=dict(score_thr=0.05, nms=dict(iou_threshold=0.7)))
