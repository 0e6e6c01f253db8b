# DAMO-YOLO-Ns (tinynasL18_Ns): 1.41 M params / 1.56 GFLOPs at 416.
_base_ = ['./_base_/models/damoyolo_tinynas_nano.py']

img_scale = (416, 416)

model = dict(
    backbone=dict(
        structure='tinynas_nano_small',
        out_indices=(2, 4, 5),
        use_focus=False,
        depthwise=True,
        use_se=False,
        act_cfg=dict(type='SiLU', inplace=True)),
    neck=dict(
        in_channels=[40, 80, 160],
        out_channels=[40, 80, 160],
        depth=0.5,
        hidden_ratio=0.5,
        block_type='mobile',
        act_cfg=dict(type='SiLU', inplace=True)),
    bbox_head=dict(in_channels=[40, 80, 160], reg_max=7, last_kernel_size=1),
    test_cfg=dict(score_thr=0.03, nms=dict(iou_threshold=0.65)))
