# DAMO-YOLO Ns / Nm / Nl / N -> ONNX Runtime, dynamic batch and size.
_base_ = ['./_base_/onnx_dynamic.py']
# test_cfg of the nano models: score 0.03, IoU 0.65 (500 per image).
codebase_config = dict(
    post_processing=dict(score_threshold=0.03, iou_threshold=0.65))
backend_config = dict(type='onnxruntime')
