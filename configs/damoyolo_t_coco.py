# DAMO-YOLO-T (tinynasL20_T): 8.5 M params / 18.1 GFLOPs at 640.
# DAMO-YOLO-S with a smaller backbone and neck, and shear 0.2 deg.
_base_ = './damoyolo_s_coco.py'

model = dict(
    backbone=dict(structure='tinynas_L20_k1kx'),
    neck=dict(
        in_channels=[96, 192, 384],
        out_channels=[64, 128, 256],
        hidden_ratio=1.0),
    bbox_head=dict(in_channels=[64, 128, 256]))

max_shear_degree = 0.2
train_pipeline = [
    dict(t, max_shear_degree=max_shear_degree)
    if t['type'] == 'DAMOYOLORandomAffine' else t
    for t in _base_.train_pipeline
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
