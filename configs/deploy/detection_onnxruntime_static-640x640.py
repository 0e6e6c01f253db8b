# DAMO-YOLO T / S / M / L -> ONNX Runtime, 1x3x640x640.
_base_ = ['./_base_/onnx_static.py']
onnx_config = dict(input_shape=[640, 640])  # (width, height)
backend_config = dict(type='onnxruntime')
