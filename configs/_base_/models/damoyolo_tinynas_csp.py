# DAMO-YOLO model with the CSP TinyNAS backbone (values of DAMO-YOLO-M).
_base_ = ['./damoyolo_tinynas_res.py']

model = dict(
    backbone=dict(
        type='TinyNASCSP',
        structure='tinynas_L35_kxkx',
        out_indices=(2, 3, 4),
        use_focus=True,
        with_spp=True,
        reparam=True,
        act_cfg=dict(type='SiLU', inplace=True),
        transition_act_cfg=dict(type='ReLU', inplace=True),
        spp_act_cfg=dict(type='SiLU', inplace=True),
        norm_cfg=dict(type='BN', momentum=0.03, eps=0.001)),
    neck=dict(
        in_channels=[128, 256, 512],
        out_channels=[128, 256, 512],
        depth=1.5,
        hidden_ratio=1.0,
        act_cfg=dict(type='SiLU', inplace=True)),
    bbox_head=dict(in_channels=[128, 256, 512]))
