# TensorRT 10: ONNX (opset 13) ending in TensorRT's stock EfficientNMS_TRT
# plugin (outputs num_dets, det_boxes, det_scores, det_classes), built with
# the TensorRT 10 Python API by tools/deploy.py (see docs/deploy.md: the
# TensorRT backend of MMDeploy 1.3.1 does not work with TensorRT 10).
_base_ = ['./onnx_static.py']
onnx_config = dict(
    opset_version=13,
    output_names=['num_dets', 'det_boxes', 'det_scores', 'det_classes'])
backend_config = dict(
    type='tensorrt',
    common_config=dict(fp16_mode=False, max_workspace_size=1 << 30))
