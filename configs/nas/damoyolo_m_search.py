# MAE-NAS search of the DAMO-YOLO-M backbone (TinyNAS example_kxkx_medium:
# KXKX blocks, 35 layers, latency budget 4e-4 s on the V100 TensorRT-FP16
# table, where the published M predicts 4.004e-4 s).
_base_ = ['./_base_/damoyolo_search.py']

search_space = dict(type='ResKXKXSpace')  # the base's channel ranges
# the base's start structure with KXKX blocks
init_structure = [
    dict(b, **{'class': b['class'].replace('K1KX', 'KXKX')})
    for b in _base_.init_structure
]

# latency: 0.9991 x the published M backbone, predicted with the shipped
# PyTorch-CPU table.
budgets = dict(layers=35, latency=0.4437)

outputs = dict(detection_config=dict(base='../damoyolo_m_coco.py'))
