# DAMO-YOLO Ns / Nm / Nl / N -> TensorRT 10 explicit INT8 engine (partial
# quantization), 1x3x416x416; see detection_tensorrt-int8_static-640x640.py.
_base_ = ['./detection_tensorrt-fp16_static-416x416_nano.py', './_base_/int8_qdq.py']
calib_config = dict(symmetric=True, quantize_bias=False)
backend_config = dict(precision='int8')
