# DAMO-YOLO Ns / Nm / Nl / N -> OpenVINO IR (FP32), 1x3x416x416.
_base_ = ['./_base_/onnx_static.py']
# test_cfg of the nano models: score 0.03, IoU 0.65 (500 per image).
codebase_config = dict(
    post_processing=dict(score_threshold=0.03, iou_threshold=0.65))
onnx_config = dict(input_shape=[416, 416])  # (width, height)
backend_config = dict(
    type='openvino',
    model_inputs=[dict(opt_shapes=dict(input=[1, 3, 416, 416]))])
