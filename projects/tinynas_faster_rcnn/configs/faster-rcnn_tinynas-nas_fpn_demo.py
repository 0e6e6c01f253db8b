# The demo recipe of faster-rcnn_tinynas-l20_fpn_demo.py with the
# NAS-searched backbone (../structures/tinynas_nas_k1kx_frcnn.txt).
_base_ = './faster-rcnn_tinynas-l20_fpn_demo.py'

model = dict(
    backbone=dict(
        structure='{{ fileDirname }}/../structures/'
        'tinynas_nas_k1kx_frcnn.txt'),
    neck=dict(in_channels=[40, 96, 192, 384]))
