# MAE-NAS search of the DAMO-YOLO-M backbone (TinyNAS example_kxkx_medium:
# KXKX blocks, 35 layers, latency budget 4e-4 s on the V100 TensorRT-FP16
# table, where the published M predicts 4.004e-4 s).
_base_ = ['./_base_/damoyolo_search.py']

search_space = dict(
    type='ResKXKXSpace',
    channel_range=[None, None, [64, 128], None, [128, 256], [256, 512]])

init_structure = [
    dict(class_='ConvKXBNRELU', in_=12, out=32, s=1, k=3),
    dict(class_='SuperResConvKXKX', in_=32, out=48, s=2, k=3, L=1, btn=32),
    dict(class_='SuperResConvKXKX', in_=48, out=96, s=2, k=3, L=1, btn=48),
    dict(class_='SuperResConvKXKX', in_=96, out=96, s=2, k=3, L=1, btn=96),
    dict(class_='SuperResConvKXKX', in_=96, out=192, s=1, k=3, L=1, btn=96),
    dict(class_='SuperResConvKXKX', in_=192, out=384, s=2, k=3, L=1, btn=192),
]

# latency: 0.9991 x the published M backbone, predicted with the shipped
# PyTorch-CPU table.
budgets = dict(layers=35, latency=0.4437)

outputs = dict(detection_config=dict(base='../damoyolo_m_coco.py'))
