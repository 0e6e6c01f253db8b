# MAE-NAS search of the DAMO-YOLO-T backbone (TinyNAS example_k1kx_tiny:
# K1KX blocks, 20 layers, latency budget 8e-5 s on the V100 TensorRT-FP16
# table -- 0.955 x the published T's 8.378e-5 s there).
_base_ = ['./_base_/damoyolo_search.py']

search_space = dict(
    type='ResK1KXSpace',
    # the T ranges of the TinyNAS DAMO-YOLO-T config (the v1 script used
    # [64, 128], [128, 256], [256, 512])
    channel_range=[None, None, [64, 96], None, [128, 192], [256, 384]])

# latency: the same 0.955 x the published T backbone, predicted with the
# shipped PyTorch-CPU table (tools/nas/build_latency_lut.py validate prints
# the official backbones' predictions).
budgets = dict(layers=20, latency=0.0947)

outputs = dict(detection_config=dict(base='../damoyolo_t_coco.py'))
