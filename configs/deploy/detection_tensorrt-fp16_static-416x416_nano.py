# DAMO-YOLO Ns / Nm / Nl / N -> TensorRT 10 FP16 engine, 1x3x416x416.
_base_ = ['./detection_tensorrt-fp16_static-640x640.py']
# test_cfg of the nano models: score 0.03, IoU 0.65 (500 per image).
codebase_config = dict(
    post_processing=dict(score_threshold=0.03, iou_threshold=0.65))
onnx_config = dict(input_shape=[416, 416])  # (width, height)
backend_config = dict(model_inputs=[
    dict(input_shapes=dict(input={
        k: [1, 3, 416, 416]
        for k in ('min_shape', 'opt_shape', 'max_shape')
    }))
])
