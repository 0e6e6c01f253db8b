# DAMO-YOLO Ns / Nm / Nl / N -> onnxruntime INT8 (partial quantization), 416x416.
_base_ = ['./detection_onnxruntime_static-416x416_nano.py', './_base_/int8_qdq.py']
onnx_config = dict(opset_version=13)  # per-channel DequantizeLinear
backend_config = dict(precision='int8')
