# DAMO-YOLO-Nl (tinynasL20_Nl): 5.69 M params / 6.04 GFLOPs at 416.
_base_ = ['./_base_/models/damoyolo_tinynas_nano.py']

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
