# DAMO-YOLO T / S / M / L -> TensorRT 10 FP16 engine, 1x3x640x640.
_base_ = ['./_base_/tensorrt_static.py']
onnx_config = dict(input_shape=[640, 640])  # (width, height)
backend_config = dict(
    common_config=dict(fp16_mode=True),
    model_inputs=[
        dict(
            input_shapes=dict(
                input=dict(
                    min_shape=[1, 3, 640, 640],
                    opt_shape=[1, 3, 640, 640],
                    max_shape=[1, 3, 640, 640])))
    ])
