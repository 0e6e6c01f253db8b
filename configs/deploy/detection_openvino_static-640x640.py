# DAMO-YOLO T / S / M / L -> OpenVINO IR (end2end.xml + .bin, FP32),
# 1x3x640x640. The ONNX is the onnxruntime export (NMS in the graph), then
# converted with openvino.convert_model (damoyolo_mm/deploy/openvino.py).
_base_ = ['./_base_/onnx_static.py']
onnx_config = dict(input_shape=[640, 640])  # (width, height)
backend_config = dict(
    type='openvino',
    model_inputs=[dict(opt_shapes=dict(input=[1, 3, 640, 640]))])
