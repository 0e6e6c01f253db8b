# DAMO-YOLO Ns / Nm / Nl / N -> TensorRT 10 FP16 engine, 1x3x416x416.
_base_ = ['./_base_/tensorrt_static.py']
# test_cfg of the nano models: score 0.03, IoU 0.65 (500 per image).
codebase_config = dict(
    post_processing=dict(score_threshold=0.03, iou_threshold=0.65))
onnx_config = dict(input_shape=[416, 416])  # (width, height)
backend_config = dict(
    common_config=dict(fp16_mode=True),
    model_inputs=[
        dict(
            input_shapes=dict(
                input=dict(
                    min_shape=[1, 3, 416, 416],
                    opt_shape=[1, 3, 416, 416],
                    max_shape=[1, 3, 416, 416])))
    ])
