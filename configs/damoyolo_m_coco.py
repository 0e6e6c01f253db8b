# DAMO-YOLO-M (tinynasL35_M): 28.2 M params / 61.8 GFLOPs at 640.
# The recipe: configs/_base_/datasets/coco_detection.py; L inherits M.
_base_ = [
    './_base_/models/damoyolo_tinynas_csp.py',
    './_base_/datasets/coco_detection.py',
    './_base_/schedules/damoyolo_sgd_300e.py', './_base_/default_runtime.py'
]
