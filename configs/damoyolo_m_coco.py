# DAMO-YOLO-M (tinynasL35_M): 28.2 M params / 61.8 GFLOPs at 640.
_base_ = ['./_base_/models/damoyolo_tinynas_csp.py']

img_scale = (640, 640)

model = dict(
    backbone=dict(
        structure='tinynas_L35_kxkx',
        out_indices=(2, 3, 4),
        use_focus=True,
        act_cfg=dict(type='SiLU', inplace=True)),
    neck=dict(
        in_channels=[128, 256, 512],
        out_channels=[128, 256, 512],
        depth=1.5,  # round(3 * 1.5) == 4 blocks per node
        hidden_ratio=1.0,
        act_cfg=dict(type='SiLU', inplace=True)),
    bbox_head=dict(in_channels=[128, 256, 512], reg_max=16,
                   last_kernel_size=3),
    test_cfg=dict(score_thr=0.05, nms=dict(iou_threshold=0.7)))
