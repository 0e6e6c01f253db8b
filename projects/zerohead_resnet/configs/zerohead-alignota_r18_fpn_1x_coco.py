# DAMO-YOLO's ZeroHead, trained with AlignOTA assignment, on a stock
# ResNet-18 + FPN. Built from mmdet's GFL R-50 1x config (the closest stock
# recipe: the same QFL / DFL / GIoU losses), with its backbone made a
# ResNet-18 and its GFLHead and ATSS assigner replaced.
#
# The FPN keeps GFL's five levels (P3-P7, 256 channels, strides 8..128);
# ZeroHead takes any number of levels with one in-channel entry each.
_base_ = 'mmdet::gfl/gfl_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['damoyolo_mm'], allow_failed_imports=False)

model = dict(
    type='SingleStageDetector',
    backbone=dict(
        depth=18,
        # No download here. The recipe (frozen stem, frozen BN statistics)
        # assumes ImageNet weights: before a COCO run set e.g.
        # init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')
        # or a local copy of that file.
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512]),
    bbox_head=dict(
        _delete_=True,
        type='ZeroHead',
        num_classes=80,
        in_channels=[256, 256, 256, 256, 256],
        strides=(8, 16, 32, 64, 128),
        reg_max=16,
        last_kernel_size=3,
        # DAMO-YOLO runs no tower (0) behind its heavy RepGFPN; behind a
        # plain FPN two 256-channel convs per branch (1x1, then 3x3) help.
        stacked_convs=2,
        feat_channels=256,
        norm_cfg=dict(type='BN', momentum=0.03, eps=0.001),
        act_cfg=dict(type='ReLU', inplace=True),
        loss_cls=dict(
            type='QualityFocalLoss',
            use_sigmoid=True,
            activated=True,
            beta=2.0,
            loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
        loss_dfl=dict(type='DistributionFocalLoss', loss_weight=0.25)),
    train_cfg=dict(
        _delete_=True,
        assigner=dict(
            type='AlignOTAAssigner',
            center_radius=2.5,
            topk=10,
            cls_weight=1.0,
            iou_weight=3.0)),
    test_cfg=dict(
        _delete_=True,
        nms_pre=1000,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.6),
        max_per_img=100))
