# RetinaNet R-18 (mmdet's own config) with the FPN replaced by DAMO-YOLO's
# RepGFPN. Compare with mmdet's retinanet_r18_fpn_1x_coco.py.
#
# RepGFPN fuses C3-C5 (strides 8, 16, 32) into three 256-channel maps; the
# stock ChannelMapper after it adds P6 / P7 (3x3 stride-2 convs on the
# output, no activation, as FPN's extra levels) so that the RetinaHead, its
# anchors (strides 8..128) and the whole training recipe stay untouched.
_base_ = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'

custom_imports = dict(imports=['damoyolo_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        out_indices=(1, 2, 3),  # C3-C5: 128, 256, 512 channels
        # No download here. The recipe (frozen stem, frozen BN statistics)
        # assumes ImageNet weights: before a COCO run set e.g.
        # init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')
        # or a local copy of that file.
        init_cfg=None),
    neck=[
        dict(
            type='RepGFPN',
            in_channels=[128, 256, 512],
            out_channels=[256, 256, 256],
            depth=1.0,
            hidden_ratio=0.75,
            block_type='rep',
            norm_cfg=dict(type='BN', momentum=0.03, eps=0.001),
            act_cfg=dict(type='ReLU', inplace=True)),
        dict(
            type='ChannelMapper',
            in_channels=[256, 256, 256],
            out_channels=256,
            kernel_size=1,
            norm_cfg=None,
            act_cfg=None,
            num_outs=5),
    ])
