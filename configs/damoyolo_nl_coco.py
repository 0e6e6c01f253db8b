# DAMO-YOLO-Nl (tinynasL20_Nl): 5.69 M params / 6.04 GFLOPs at 416.
# DAMO-YOLO-Nm with a larger backbone and neck.
_base_ = './damoyolo_nm_coco.py'

model = dict(
    backbone=dict(structure='tinynas_nano_large'),
    neck=dict(in_channels=[80, 160, 320], out_channels=[80, 160, 320]),
    bbox_head=dict(in_channels=[80, 160, 320]))
