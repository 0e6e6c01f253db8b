# DAMO-YOLO-Ns (tinynasL18_Ns): 1.41 M params / 1.56 GFLOPs at 416.
# DAMO-YOLO-Nm with a smaller backbone and neck, mosaic scale (0.75, 1.25).
_base_ = './damoyolo_nm_coco.py'

model = dict(
    backbone=dict(structure='tinynas_nano_small'),
    neck=dict(in_channels=[40, 80, 160], out_channels=[40, 80, 160]),
    bbox_head=dict(in_channels=[40, 80, 160]))

mosaic_scale = (0.75, 1.25)
train_pipeline = [
    dict(t, scaling_ratio_range=mosaic_scale)
    if t['type'] == 'DAMOYOLORandomAffine' else t
    for t in _base_.train_pipeline
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
