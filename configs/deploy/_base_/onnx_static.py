# ONNX export of DAMO-YOLO, static input shape; post-processing (multiclass
# NMS) is part of the graph. The post_processing values equal the test_cfg
# of DAMO-YOLO T/S/M/L (score 0.05, IoU 0.7, 500 detections per image) so
# that the exported model returns the PyTorch detections; the *_nano
# configs override them for Ns/Nm/Nl/N (score 0.03, IoU 0.65).
#
# custom_imports: what MMDeploy needs from this package, so that MMDeploy's
# own tools/deploy.py and tools/test.py (1.3.1) work with these configs
# unmodified: damoyolo_mm.deploy registers the ZeroHead export rewriter and
# the torch >= 2.9 export fix (a MMDeploy rewriter of torch.onnx.export,
# active only inside MMDeploy's export context; see
# damoyolo_mm/deploy/compat.py). The model configs import damoyolo_mm
# itself. Every deploy config inherits this from here.
custom_imports = dict(
    imports=['damoyolo_mm.deploy'], allow_failed_imports=False)
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=11,
    save_file='end2end.onnx',
    input_names=['input'],
    output_names=['dets', 'labels'],
    input_shape=None,
    optimize=False)
codebase_config = dict(
    type='mmdet',
    task='ObjectDetection',
    model_type='end2end',
    post_processing=dict(
        score_threshold=0.05,
        confidence_threshold=0.005,  # only used by MMDeploy's mask heads
        iou_threshold=0.7,
        max_output_boxes_per_class=500,
        pre_top_k=-1,
        keep_top_k=500,
        background_label_id=-1,
    ))
