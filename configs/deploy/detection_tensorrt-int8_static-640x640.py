# DAMO-YOLO T / S / M / L -> TensorRT 10 explicit INT8 engine (partial
# quantization), 1x3x640x640: tools/deploy.py calibrates and quantizes the
# part before the EfficientNMS_TRT plugin (as the onnxruntime-int8 configs,
# with symmetric INT8 activations, zero point 0, and float biases, as
# TensorRT's explicit quantization requires),
# writes the QDQ end2end.onnx, then builds the engine on a GPU (the layers
# kept in float run in FP16).
_base_ = ['./detection_tensorrt-fp16_static-640x640.py', './_base_/int8_qdq.py']
calib_config = dict(symmetric=True, quantize_bias=False)
backend_config = dict(precision='int8')
