# DAMO-YOLO-L (tinynasL45_L): 42.1 M params / 97.3 GFLOPs at 640.
# DAMO-YOLO-M with a deeper backbone and neck.
_base_ = './damoyolo_m_coco.py'

model = dict(
    backbone=dict(structure='tinynas_L45_kxkx'), neck=dict(depth=2.0))
