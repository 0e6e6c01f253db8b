# INT8 partial post-training quantization (damoyolo_mm/deploy/quantization.py):
# tools/deploy.py exports the FP32 end-to-end ONNX, calibrates on the model
# config's val dataset (or --calib-dataset-cfg), ranks the convolutions by
# the output error each causes when quantized alone, keeps the most
# sensitive ones float and writes end2end.onnx with QuantizeLinear /
# DequantizeLinear nodes (same input / dets / labels as the FP32 export).
# The INT8 deploy configs also set onnx_config.opset_version=13 (per-channel
# DequantizeLinear needs it) and backend_config.precision='int8'.
calib_config = dict(
    type='ort_qdq',  # onnxruntime.quantization.quantize_static, QDQ format
    num_images=32,  # calibration images, the first of the dataset
    method='MinMax',  # MinMax / Entropy / Percentile (ONNX Runtime)
    per_channel=True,  # INT8 weights per output channel; UINT8 activations
    op_types=('Conv', ),  # decoding and NMS stay float
    keep_float='auto',  # or the number of most sensitive convs kept float
    sensitivity_images=8,  # calibration images of the sensitivity analysis
    auto_error_ratio=0.5,  # 'auto': error <= 0.5 x the full-INT8 error
    auto_max_float_ratio=0.25,  # 'auto': at most 1/4 of the convs float
    symmetric=False,  # True (TensorRT): INT8 activations with zero point 0
    quantize_bias=True)  # False (TensorRT): biases stay float
