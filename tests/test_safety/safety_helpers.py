"""Helpers of the safety tests: a tiny training config and a hook that
blocks a checkpoint save at a chosen point (so that a test can kill the
process there). Imported by the training subprocesses through
``custom_imports``."""
import os
import os.path as osp
import time

from mmdet.registry import HOOKS
from mmengine.hooks import Hook

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLASSES = ('disk', 'rectangle', 'triangle', 'ring', 'cross')


def _block_forever(marker: str) -> None:
    with open(marker, 'w') as f:
        f.write(str(os.getpid()))
    while True:
        time.sleep(1)


@HOOKS.register_module()
class BlockCheckpointSaveHook(Hook):
    """Block the save of the checkpoint of ``epoch`` forever, after writing
    ``marker``: ``point='before_write'`` before the file is written,
    ``'before_rename'`` when the file is written under its temporary name
    and about to be renamed into place."""

    priority = 'LOWEST'

    def __init__(self, epoch: int, marker: str, point: str) -> None:
        self.epoch, self.marker, self.point = epoch, marker, point

    def before_save_checkpoint(self, runner, checkpoint) -> None:
        if checkpoint['meta']['epoch'] != self.epoch:
            return
        if self.point == 'before_write':
            _block_forever(self.marker)
        replace = os.replace
        name = f'epoch_{self.epoch}.pth'

        def blocking_replace(src, dst, *args, **kwargs):
            if str(dst).endswith(name):
                _block_forever(self.marker)
            return replace(src, dst, *args, **kwargs)

        os.replace = blocking_replace


def tiny_config(data_root: str, **extra) -> str:
    """Text of a config training DAMO-YOLO-Ns at 64 px on 12 demo images
    (3 iterations per epoch), checkpoint every epoch, one kept."""
    body = f'''
_base_ = [{osp.join(REPO, 'configs', 'damoyolo_ns_coco.py')!r}]
custom_imports = dict(imports=['damoyolo_mm', 'safety_helpers'],
                      allow_failed_imports=False)
model = dict(bbox_head=dict(num_classes={len(CLASSES)}))
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(64, 64), keep_ratio=False),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    _delete_=True, batch_size=4, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='DAMOYOLOCocoDataset', data_root={data_root!r},
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'), metainfo=dict(classes={CLASSES!r}),
        filter_cfg=dict(filter_empty_gt=False), indices=12,
        pipeline=pipeline))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=3)
optim_wrapper = dict(
    _delete_=True, optimizer=dict(type='AdamW', lr=0.002, weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))
param_scheduler = [
    dict(type='QuadraticWarmupLR', by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.05, begin=1, T_max=2,
         end=3, by_epoch=True, convert_to_iter_based=True),
]
auto_scale_lr = dict(enable=False)
custom_hooks = [dict(type='CheckFiniteLossHook')]
default_hooks = dict(
    checkpoint=dict(interval=1, max_keep_ckpts=1, save_best=None),
    logger=dict(interval=1))
randomness = dict(seed=0)
log_level = 'WARNING'
'''
    for key, value in extra.items():
        body += f'{key} = {value!r}\n'
    return body


def toy_runner_kwargs(work_dir, **kwargs) -> dict:
    """Arguments of an mmengine Runner training a one-layer model on 4
    numbers (2 iterations per epoch), no logger; ``kwargs`` override."""
    import torch
    from mmengine.model import BaseModel
    from torch.utils.data import Dataset

    class ToyData(Dataset):

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return dict(inputs=torch.full((2, ), float(i)))

    class ToyModel(BaseModel):

        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(2, 1)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            x = torch.stack(inputs) if isinstance(inputs, list) else inputs
            return dict(loss=self.fc(x).pow(2).mean())

    return dict(
        dict(model=ToyModel(), work_dir=str(work_dir),
             train_dataloader=dict(dataset=ToyData(), batch_size=2,
                                   num_workers=0,
                                   sampler=dict(type='DefaultSampler')),
             optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
             default_scope='mmdet'), **kwargs)
