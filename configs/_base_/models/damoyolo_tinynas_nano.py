# DAMO-YOLO nano model: mobile TinyNAS backbone, RepGFPN with inverted
# residual blocks (values of DAMO-YOLO-Ns).
_base_ = ['./damoyolo_tinynas_res.py']

img_scale = (416, 416)

model = dict(
    backbone=dict(
        _delete_=True,  # TinyNASMob takes no `reparam`
        type='TinyNASMob',
        structure='tinynas_nano_small',
        out_indices=(2, 4, 5),
        use_focus=False,
        with_spp=True,
        depthwise=True,
        use_se=False,
        act_cfg=dict(type='SiLU', inplace=True),
        spp_act_cfg=dict(type='SiLU', inplace=True),
        norm_cfg=dict(type='BN', momentum=0.03, eps=0.001)),
    neck=dict(
        in_channels=[40, 80, 160],
        out_channels=[40, 80, 160],
        depth=0.5,
        hidden_ratio=0.5,
        block_type='mobile',
        act_cfg=dict(type='SiLU', inplace=True)),
    bbox_head=dict(
        in_channels=[40, 80, 160], reg_max=7, last_kernel_size=1),
    test_cfg=dict(score_thr=0.03, nms=dict(iou_threshold=0.65)))
