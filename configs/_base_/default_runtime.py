# Runtime settings shared by every DAMO-YOLO config.
# `default_scope = 'mmdet'` and `custom_imports` (damoyolo_mm) come with the
# model bases (configs/_base_/models/); mmengine refuses a key defined by two
# sibling bases, so they are not repeated here.

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # every 10 epochs (as the evaluation); the best COCO mAP is kept too.
    # With EMAHook the saved `state_dict` holds the EMA weights.
    # AtomicCheckpointHook: mmengine's CheckpointHook, crash-safe (files
    # written to a temporary name and renamed; old ones removed after).
    checkpoint=dict(
        type='AtomicCheckpointHook',
        interval=10,
        max_keep_ckpts=3,
        save_best='coco/bbox_mAP',
        rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='DetVisualizationHook'),
    # the head's num_classes vs metainfo['classes'] vs the annotation file's
    # categories, before training / validation / testing (one error naming
    # all three)
    class_count_check=dict(type='ClassCountCheckHook'))

# mmengine's Runner that trains only in a work dir no other training holds
# (lock file `run.lock` in the work dir; damoyolo_mm/engine/runner.py)
runner_type = 'DAMOYOLORunner'

# No backend in dist_cfg: tools/train.py and tools/test.py pick nccl on GPUs
# and gloo on CPUs (damoyolo_mm.engine.distributed); set one here to force it.
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict())
# Distributed runs convert every BatchNorm to SyncBatchNorm, as the official
# trainer does (batch statistics over all processes); single-process runs keep
# plain BatchNorm (mmengine applies `sync_bn` only when distributed).
sync_bn = 'torch'

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)

log_level = 'INFO'
load_from = None
resume = False
