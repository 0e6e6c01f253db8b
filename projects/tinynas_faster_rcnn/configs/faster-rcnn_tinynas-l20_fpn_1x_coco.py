# Faster R-CNN (mmdet's own R-50 FPN 1x config) with the TinyNAS-Res backbone
# of DAMO-YOLO-T (the official structure tinynas_L20_k1kx) instead of the
# ResNet-50.
#
# The backbone returns the structure entries 1, 2, 4 and 5 (strides 4, 8,
# 16, 32), which is what the stock FPN + RPN + RoI head expect; their widths
# are the backbone's `out_channels`: [64, 96, 192, 384].
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['damoyolo_mm'], allow_failed_imports=False)

model = dict(
    # DAMO-YOLO's input convention (RGB, raw 0..255 pixels), so the backbone
    # of a (converted) DAMO-YOLO-T checkpoint can initialise this one.
    data_preprocessor=dict(mean=[0., 0., 0.], std=[1., 1., 1.]),
    backbone=dict(
        _delete_=True,
        type='TinyNASRes',
        structure='tinynas_L20_k1kx',
        out_indices=(1, 2, 4, 5),
        use_focus=True,
        with_spp=True,
        reparam=True,
        act_cfg=dict(type='ReLU', inplace=True),
        norm_cfg=dict(type='BN', momentum=0.03, eps=0.001),
        # TinyNAS has no ImageNet weights; random init unless e.g.
        # init_cfg=dict(type='Pretrained', prefix='backbone.',
        #               checkpoint='path/to/damoyolo_t_converted.pth')
        init_cfg=None),
    neck=dict(in_channels=[64, 96, 192, 384]))

# 2 images per GPU: synchronise BN statistics across GPUs (only applied by
# the runner in distributed runs).
sync_bn = 'torch'
