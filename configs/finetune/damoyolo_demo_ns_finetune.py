# The fine-tuning demo (tools/finetune_demo.sh): the quickstart model (Ns at
# 224 px, trained on the 5 demo shape classes) fine-tuned on a new task: 3 of
# the classes on new images (another generator seed, only 80 training
# images), written by
#   python tools/misc/gen_demo_data.py --out-dir data/demo_newtask --seed 1 \
#       --num-train 80 --num-val 40
#   python tools/misc/coco_subset.py \
#       data/demo_newtask/annotations/instances_train.json \
#       data/demo_newtask/annotations/shapes3_train.json \
#       --classes disk triangle cross        (and the same for val)
# Images of rectangles and rings are kept: they are background in this task.
# configs/finetune/damoyolo_demo_ns_scratch.py trains the same model with
# the same schedule from random weights, for comparison.
#
# The schedule follows configs/finetune/damoyolo_t_finetune_custom.py (the
# reasoning is written there), scaled to the demo: 12 epochs of 10
# iterations (batch 8), lr a quarter of the quickstart's (AdamW 0.002),
# 1 warm-up epoch, EMA over about the last 20 updates (momentum 0.05, ramp
# 20), the last 2 epochs without mosaic / affine, one evaluation at the end.
_base_ = [
    '../quickstart/damoyolo_quickstart.py', './_base_/finetune_head.py'
]

# --- the new task: data and classes ---------------------------------------
data_root = 'data/demo_newtask/'
metainfo = dict(
    classes=('disk', 'triangle', 'cross'),
    palette=[(220, 20, 60), (60, 180, 75), (145, 30, 180)])
train_ann_file = 'annotations/shapes3_train.json'
val_ann_file = 'annotations/shapes3_val.json'

# --- the model: class count from the classes, weights from the quickstart --
model = dict(
    bbox_head=dict(num_classes=len(metainfo['classes'])),
    partial_load=_base_.finetune_partial_load)
# the checkpoint of `bash tools/quickstart.sh` (tools/finetune_demo.sh
# passes its own with --cfg-options load_from=...)
load_from = 'work_dirs/quickstart/epoch_55.pth'

# --- the fine-tuning schedule ----------------------------------------------
max_epochs = 12
warmup_epochs = 1
num_last_epochs = 2
base_lr = 0.002

train_dataloader = dict(
    dataset=dict(
        dataset=dict(
            data_root=data_root,
            metainfo=metainfo,
            ann_file=train_ann_file,
            data_prefix=dict(img='train/'))))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file=val_ann_file,
        data_prefix=dict(img='val/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + val_ann_file)
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=base_lr))
param_scheduler = [
    dict(_base_.param_scheduler[0], end=warmup_epochs),
    dict(
        _base_.param_scheduler[1],
        begin=warmup_epochs,
        T_max=max_epochs - num_last_epochs - warmup_epochs,
        end=max_epochs - num_last_epochs),
    dict(
        _base_.param_scheduler[2],
        begin=max_epochs - num_last_epochs,
        end=max_epochs),
]
custom_hooks = [
    dict(h, momentum=0.05, gamma=20) if h['type'] == 'EMAHook' else
    dict(h, switch_epoch=max_epochs - num_last_epochs)
    if h['type'] == 'PipelineSwitchHook' else h for h in _base_.custom_hooks
] + [
    # one compute thread: on a busy 2-core machine two OpenMP threads wait
    # on each other and a step is several times slower
    dict(type='TorchThreadsHook', num_threads=1)
]
default_hooks = dict(
    logger=dict(interval=5), checkpoint=dict(interval=max_epochs))
