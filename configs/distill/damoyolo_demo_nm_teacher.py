# Demo teacher: DAMO-YOLO-Nm on the embedded demo data, same recipe as
# damoyolo_demo_ns.py (the quickstart recipe). Train it first, then distill
# damoyolo_demo_ns_distill_from_nm.py from its checkpoint.
_base_ = ['./damoyolo_demo_ns.py']

# DAMO-YOLO-Nm (values of configs/damoyolo_nm_coco.py), 5 classes
model = dict(
    backbone=dict(structure='tinynas_nano_middle'),
    neck=dict(in_channels=[64, 128, 256], out_channels=[64, 128, 256]),
    bbox_head=dict(in_channels=[64, 128, 256]))
