# DAMO-YOLO schedule for T / S / M / L: 300 epochs, SGD.
#
# lr = 0.01 per 64 images, scaled linearly with the real batch size
# (world size x train_dataloader.batch_size) by `auto_scale_lr`; the
# reference trains with a batch of 256 (lr 0.04).
# 5 epochs of quadratic warm-up from 0, cosine decay to 0.05 x lr, then the
# last 16 epochs at that minimum (the strong augmentation is switched off
# for them by PipelineSwitchHook, see the dataset config).
max_epochs = 300
num_last_epochs = 16
warmup_epochs = 5
base_lr = 0.01  # per 64 images

train_cfg = dict(
    type='EpochBasedTrainLoop',
    max_epochs=max_epochs,
    val_interval=10,
    # evaluate after every epoch of the no-augmentation tail (epochs
    # 285..300); mmengine switches when (completed epochs + 1) >= milestone
    dynamic_intervals=[(max_epochs - num_last_epochs + 2, 1)])
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='SGD',
        lr=base_lr,
        momentum=0.9,
        weight_decay=5e-4,
        nesterov=True),
    # no weight decay on normalisation layers nor on any bias
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))

param_scheduler = [
    dict(
        type='QuadraticWarmupLR',
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        eta_min_ratio=0.05,
        begin=warmup_epochs,
        T_max=max_epochs - num_last_epochs - warmup_epochs,
        end=max_epochs - num_last_epochs,
        by_epoch=True,
        convert_to_iter_based=True),
    dict(
        type='ConstantLR',
        by_epoch=True,
        factor=1,
        begin=max_epochs - num_last_epochs,
        end=max_epochs),
]

auto_scale_lr = dict(enable=True, base_batch_size=64)
