# MAE-NAS search settings shared by the DAMO-YOLO backbone searches
# (TinyNAS v1 scripts/damo-yolo/*.sh). Launch a variant config with
#   python tools/nas_search.py configs/nas/damoyolo_t_search.py --work-dir DIR
custom_imports = dict(imports=['damoyolo_mm.nas'], allow_failed_imports=False)
runner_type = 'NASSearchRunner'

# Search format: the stem reads the 12-channel space-to-depth input at
# 320 x 320 (a 640 x 640 image after the detector's Focus layer).
search_space = dict(
    type='ResK1KXSpace',
    image_size=320,
    # [min, max] of `out` per block (stem first; those of S and M); None =
    # unconstrained
    channel_range=[None, None, [64, 128], None, [128, 256], [256, 512]],
    stem_max_channels=32,
    max_channels=2048,
    channel_scales=[2.0, 1.5, 1.25, 0.8, 0.6, 0.5],
    channel_divisor=8,
    mutate_methods=['out', 'btn', 'L'],  # the kernel stays 3
    stem_mutate_methods=['out'],
    layer_deltas=[-2, -1, 1, 2],
    first_block_max_L=2,
    max_L=None,  # layers // 2 // (n_blocks - 2)
    btn_min_ratio=10,
    num_mutations=2,
    exclude_stem=False)

# The initial structure of every DAMO-YOLO search.
init_structure = [
    dict({'class': 'ConvKXBNRELU'}, **{'in': 12, 'out': 32, 's': 1, 'k': 3}),
    dict({'class': 'SuperResConvK1KX'},
         **{'in': 32, 'out': 48, 's': 2, 'k': 3, 'L': 1, 'btn': 32}),
    dict({'class': 'SuperResConvK1KX'},
         **{'in': 48, 'out': 96, 's': 2, 'k': 3, 'L': 1, 'btn': 48}),
    dict({'class': 'SuperResConvK1KX'},
         **{'in': 96, 'out': 96, 's': 2, 'k': 3, 'L': 1, 'btn': 96}),
    dict({'class': 'SuperResConvK1KX'},
         **{'in': 96, 'out': 192, 's': 1, 'k': 3, 'L': 1, 'btn': 96}),
    dict({'class': 'SuperResConvK1KX'},
         **{'in': 192, 'out': 384, 's': 2, 'k': 3, 'L': 1, 'btn': 192}),
]

# madnas: the closed-form MAE score all DAMO-YOLO searches used.
score = dict(type='madnas', stage_weights=[0, 0, 1, 1, 16])

# layers / params / FLOPs: counts (TinyNAS counting at image_size);
# latency: seconds per image on the latency table's target. Strings with
# units are accepted too ('4.0G', '60ms').
budgets = dict(layers=None, params=None, flops=None, latency=None, stages=5)

# None = the shipped PyTorch-CPU table (1 thread, batch 1, fp32); build one
# for another target with tools/nas/build_latency_lut.py.
latency = dict(lut=None)

search = dict(
    popu_size=512,
    num_candidates=500000,  # generated children, in budget or not
    seed=13,
    checkpoint_interval=10000,
    log_interval=5000,
    save_candidates=True,
    plot=True,
    progress=True)

# detection config written next to the results: inherits `base` (set per
# variant), points model.backbone.structure to best_structure.txt (or, with
# inline_structure=True, writes the list inline -- mmengine 0.10.7 cannot
# dump such a config when training) and sets the neck input channels.
outputs = dict(detection_config=dict(base=None, inline_structure=False))
