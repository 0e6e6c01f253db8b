# DAMO-YOLO-Nm (tinynasL18_Nm): 2.71 M params / 3.69 GFLOPs at 416.
# The Nano recipe (configs/_base_/datasets/coco_detection.py) at 416 px with
# shear 0.2 deg and AdamW; Ns and Nl inherit Nm.
_base_ = [
    './_base_/models/damoyolo_tinynas_nano.py',
    './_base_/datasets/coco_detection.py',
    './_base_/schedules/damoyolo_adamw_300e.py', './_base_/default_runtime.py'
]

img_scale = (416, 416)
max_shear_degree = 0.2

# the transforms that read the two values above, rebuilt from the base
train_pipeline_tail = [
    dict(t, scale=img_scale) if t['type'] == 'Resize' else t
    for t in _base_.train_pipeline_tail
]
train_pipeline = [
    dict(t, max_shear_degree=max_shear_degree)
    if t['type'] == 'DAMOYOLORandomAffine' else t
    for t in _base_.train_pipeline[:-len(train_pipeline_tail)]
] + train_pipeline_tail
test_pipeline = [
    dict(t, scale=img_scale) if t['type'] == 'Resize' else t
    for t in _base_.test_pipeline
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
# the no-augmentation tail of the last 16 epochs
custom_hooks = [
    dict(h, switch_pipeline=train_pipeline_tail)
    if h['type'] == 'PipelineSwitchHook' else h
    for h in _base_.custom_hooks
]
