# MAE-NAS search of a TinyNAS-Res backbone for Faster R-CNN, under the cost
# of the DAMO-YOLO-T backbone (tinynas_L20_k1kx: 19 layers, 1.90 M params,
# 4.00 GFLOPs at the 320 x 320 search input = a 640 x 640 image after Focus).
#
#   python tools/nas_search.py THIS_FILE --work-dir work_dirs/frcnn_nas
#
# (from the repository root) writes work_dirs/frcnn_nas/best_structure.txt;
# the copy shipped as
# projects/tinynas_faster_rcnn/structures/tinynas_nas_k1kx_frcnn.txt is the
# output of exactly this config (the search is deterministic for a seed).
# Self-contained on purpose: every setting that decides the search
# trajectory is written here.
custom_imports = dict(imports=['damoyolo_mm.nas'], allow_failed_imports=False)
runner_type = 'NASSearchRunner'

search_space = dict(
    type='ResK1KXSpace',
    image_size=320,
    # the DAMO-YOLO-T channel ranges (stem first, None = unconstrained)
    channel_range=[None, None, [64, 96], None, [128, 192], [256, 384]],
    stem_max_channels=32,
    max_channels=2048,
    channel_scales=[2.0, 1.5, 1.25, 0.8, 0.6, 0.5],
    channel_divisor=8,
    mutate_methods=['out', 'btn', 'L'],
    stem_mutate_methods=['out'],
    layer_deltas=[-2, -1, 1, 2],
    first_block_max_L=2,
    max_L=None,
    btn_min_ratio=10,
    num_mutations=2,
    exclude_stem=False)

# the initial structure of the DAMO-YOLO searches (search format: the stem
# reads the 12-channel space-to-depth input)
init_structure = [
    dict(class_='ConvKXBNRELU', in_=12, out=32, s=1, k=3),
    dict(class_='SuperResConvK1KX', in_=32, out=48, s=2, k=3, L=1, btn=32),
    dict(class_='SuperResConvK1KX', in_=48, out=96, s=2, k=3, L=1, btn=48),
    dict(class_='SuperResConvK1KX', in_=96, out=96, s=2, k=3, L=1, btn=96),
    dict(class_='SuperResConvK1KX', in_=96, out=192, s=1, k=3, L=1, btn=96),
    dict(class_='SuperResConvK1KX', in_=192, out=384, s=2, k=3, L=1, btn=192),
]

# Faster R-CNN's FPN reads the stride-4 stage too (DAMO-YOLO starts at
# stride 8 and weights [0, 0, 1, 1, 16]), so stage 1 gets weight 1.
score = dict(type='madnas', stage_weights=[0, 1, 1, 1, 16])

# the cost of tinynas_L20_k1kx (no latency table involved)
budgets = dict(layers=20, params=2.0e6, flops=4.0e9, latency=None, stages=5)

search = dict(
    popu_size=512,
    num_candidates=20000,
    seed=13,
    checkpoint_interval=10000,
    log_interval=5000,
    save_candidates=True,
    plot=False,
    progress=False)

outputs = dict(detection_config=dict(base=None))
