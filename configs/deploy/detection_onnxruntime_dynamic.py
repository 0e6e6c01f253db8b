# DAMO-YOLO T / S / M / L -> ONNX Runtime, dynamic batch and size (sides
# must be multiples of 32); traced at the model's test size.
_base_ = ['./_base_/onnx_dynamic.py']
backend_config = dict(type='onnxruntime')
