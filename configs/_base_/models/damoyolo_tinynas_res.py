# DAMO-YOLO model with the residual TinyNAS backbone (values of DAMO-YOLO-S).
# Variant configs override the per-variant values.
custom_imports = dict(imports=['damoyolo_mm'], allow_failed_imports=False)
default_scope = 'mmdet'

norm_cfg = dict(type='BN', momentum=0.03, eps=0.001)

model = dict(
    type='DAMOYOLO',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[0., 0., 0.],
        std=[1., 1., 1.],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='TinyNASRes',
        structure='tinynas_L25_k1kx',
        out_indices=(2, 4, 5),
        use_focus=True,
        with_spp=True,
        reparam=True,
        act_cfg=dict(type='ReLU', inplace=True),
        spp_act_cfg=dict(type='SiLU', inplace=True),
        norm_cfg=norm_cfg),
    neck=dict(
        type='RepGFPN',
        in_channels=[128, 256, 512],
        out_channels=[128, 256, 512],
        depth=1.0,
        hidden_ratio=0.75,
        block_type='rep',
        act_cfg=dict(type='ReLU', inplace=True),
        norm_cfg=norm_cfg),
    bbox_head=dict(
        type='ZeroHead',
        num_classes=80,
        in_channels=[128, 256, 512],
        strides=(8, 16, 32),
        reg_max=16,
        last_kernel_size=3,
        stacked_convs=0,
        loss_cls=dict(
            type='QualityFocalLoss',
            use_sigmoid=True,
            activated=True,
            beta=2.0,
            loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
        loss_dfl=dict(type='DistributionFocalLoss', loss_weight=0.25)),
    train_cfg=dict(
        assigner=dict(
            type='AlignOTAAssigner',
            center_radius=2.5,
            topk=10,
            cls_weight=1.0,
            iou_weight=3.0)),
    test_cfg=dict(
        nms_pre=-1,  # no pre-NMS limit (every score > score_thr)
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.7),
        max_per_img=500))
