# DAMO-YOLO T / S / M / L -> onnxruntime INT8 (partial quantization), 1x3x640x640.
_base_ = ['./detection_onnxruntime_static-640x640.py', './_base_/int8_qdq.py']
onnx_config = dict(opset_version=13)  # per-channel DequantizeLinear
backend_config = dict(precision='int8')
