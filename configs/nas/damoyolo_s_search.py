# MAE-NAS search of the DAMO-YOLO-S backbone (TinyNAS example_k1kx_small:
# K1KX blocks, 25 layers, latency budget 12e-5 s on the V100 TensorRT-FP16
# table, where the published S predicts 1.1996e-4 s).
_base_ = ['./_base_/damoyolo_search.py']  # K1KX space, S channel ranges

# latency: 1.0004 x the published S backbone, predicted with the shipped
# PyTorch-CPU table.
budgets = dict(layers=25, latency=0.1693)

outputs = dict(detection_config=dict(base='../damoyolo_s_coco.py'))
