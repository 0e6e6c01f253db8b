# Fine-tune DAMO-YOLO-T from its released COCO weights on your own
# COCO-format dataset (docs/custom_dataset.md walks through every step).
# Change the "your data" block and `load_from`; the rest follows from them.
_base_ = ['../damoyolo_t_coco.py', './_base_/finetune_head.py']

# --- your data ---------------------------------------------------------
data_root = 'data/my_dataset/'
train_ann_file = 'annotations/train.json'
train_img_prefix = 'images/train/'
val_ann_file = 'annotations/val.json'
val_img_prefix = 'images/val/'
# exactly the category names of the annotation files, in their order
metainfo = dict(
    classes=('person', 'bicycle', 'car'),
    palette=[(220, 20, 60), (119, 11, 32), (0, 0, 142)])

# --- the model: class count from the classes, weights from the release ------
# The class layers of the head (80 COCO classes in the checkpoint) are
# re-initialised (_base_/finetune_head.py); everything else must load.
model = dict(
    bbox_head=dict(num_classes=len(metainfo['classes'])),
    partial_load=_base_.finetune_partial_load)
# the official DAMO-YOLO-T weights as released (damoyolo_tinynasL20_T_436.pth
# of the official model zoo): converted in memory when loaded; a checkpoint
# converted with tools/convert_official.py or one of ours loads the same way
load_from = 'checkpoints/damoyolo_tinynasL20_T_436.pth'

# --- the fine-tuning schedule ---------------------------------------------
# What changes from the 300-epoch COCO recipe (configs/damoyolo_t_coco.py),
# and why:
# * 36 epochs instead of 300: backbone, neck, towers and box layers start
#   trained; only the class layers start from scratch, and a small dataset
#   overfits a long schedule. Evaluate every 4 epochs and keep the best.
# * lr a quarter of the recipe's (0.0025 instead of 0.01 per 64 images,
#   still scaled with the real batch by auto_scale_lr): full-size steps
#   would first undo the pretrained features.
# * 1 warm-up epoch (quadratic, as the recipe): the re-initialised class
#   layers give large and noisy gradients at the start, which would
#   otherwise flow back into the pretrained backbone.
# * EMA kept (the evaluated and saved weights), averaged over ~1000 updates
#   (momentum 0.001) with a 200-update ramp instead of 5000 / 2000: the
#   recipe's average would reach back to the first, untrained class layers.
# * the last 4 epochs without mosaic / affine / mixup (the recipe's last
#   16 of 300), as the recipe ends.
max_epochs = 36
warmup_epochs = 1
num_last_epochs = 4
val_interval = 4
base_lr = 0.0025  # per 64 images

train_dataloader = dict(
    dataset=dict(
        dataset=dict(
            data_root=data_root,
            metainfo=metainfo,
            ann_file=train_ann_file,
            data_prefix=dict(img=train_img_prefix))))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file=val_ann_file,
        data_prefix=dict(img=val_img_prefix)))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + val_ann_file)
test_evaluator = val_evaluator

train_cfg = dict(
    max_epochs=max_epochs,
    val_interval=val_interval,
    dynamic_intervals=[(max_epochs - num_last_epochs + 2, 1)])
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
    dict(h, momentum=0.001, gamma=200) if h['type'] == 'EMAHook' else
    dict(h, switch_epoch=max_epochs - num_last_epochs)
    if h['type'] == 'PipelineSwitchHook' else h for h in _base_.custom_hooks
]
default_hooks = dict(checkpoint=dict(interval=val_interval))
