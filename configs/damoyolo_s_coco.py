# DAMO-YOLO-S (tinynasL25_S): 16.3 M params / 37.8 GFLOPs at 640.
# The recipe: configs/_base_/datasets/coco_detection.py; T inherits S.
_base_ = [
    './_base_/models/damoyolo_tinynas_res.py',
    './_base_/datasets/coco_detection.py',
    './_base_/schedules/damoyolo_sgd_300e.py', './_base_/default_runtime.py'
]
