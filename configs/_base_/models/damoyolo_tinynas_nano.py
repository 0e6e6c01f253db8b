# DAMO-YOLO nano model: mobile TinyNAS backbone, RepGFPN with inverted
# residual blocks (values of DAMO-YOLO-Nm).
_base_ = ['./damoyolo_tinynas_res.py']

model = dict(
    backbone=dict(
        # the residual backbone's settings but `reparam`, which TinyNASMob
        # does not take
        {k: v
         for k, v in _base_.model.backbone.items() if k != 'reparam'},
        _delete_=True,
        type='TinyNASMob',
        structure='tinynas_nano_middle',
        use_focus=False,
        depthwise=True,
        use_se=False,
        act_cfg=dict(type='SiLU', inplace=True)),
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
