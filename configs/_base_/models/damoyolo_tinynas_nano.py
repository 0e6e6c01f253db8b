# DAMO-YOLO nano model: mobile TinyNAS backbone, RepGFPN with inverted
# residual blocks (values of DAMO-YOLO-Nm).
_base_ = ['./damoyolo_tinynas_res.py']

model = dict(
    backbone=dict(
        _delete_=True,  # TinyNASMob takes no `reparam`
        type='TinyNASMob',
        structure='tinynas_nano_middle',
        out_indices=(2, 4, 5),
        use_focus=False,
        with_spp=True,
        depthwise=True,
        use_se=False,
        act_cfg=dict(type='SiLU', inplace=True),
        spp_act_cfg=dict(type='SiLU', inplace=True),
        norm_cfg=_base_.norm_cfg),
    neck=dict(
        in_channels=[64, 128, 256],
        out_channels=[64, 128, 256],
        depth=0.5,
        hidden_ratio=0.5,
        block_type='mobile',
        act_cfg=dict(type='SiLU', inplace=True)),
    bbox_head=dict(
        in_channels=[64, 128, 256], reg_max=7, last_kernel_size=1),
    test_cfg=dict(score_thr=0.03, nms=dict(iou_threshold=0.65)))
