# Faster R-CNN with a TinyNAS-Res backbone found by our MAE-NAS runner for
# this detector: ../structures/tinynas_nas_k1kx_frcnn.txt is the
# best_structure.txt written by `python tools/nas_search.py CONFIG` with
# CONFIG = ./mae-nas_k1kx_frcnn-t-budget_search.py (same layers / params /
# FLOPs budget as tinynas_L20_k1kx, stride-4 stage included in the score).
# Its outputs 1, 2, 4, 5 have 40, 96, 192, 384 channels.
_base_ = './faster-rcnn_tinynas-l20_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        structure='{{ fileDirname }}/../structures/'
        'tinynas_nas_k1kx_frcnn.txt'),
    neck=dict(in_channels=[40, 96, 192, 384]))
