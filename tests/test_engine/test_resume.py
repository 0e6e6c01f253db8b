"""Stop-and-resume gives the same training as an uninterrupted run.

A DAMO-YOLO-Ns (64 px inputs) trains on a few demo images with the
recipe's pieces (AdamW with norm / bias decay off, quadratic warm-up ->
cosine -> flat schedule, DAMOYOLOEMA via EMAHook, CheckFiniteLossHook)
under mmengine's Runner. Run A trains 3 epochs; run B is stopped after
epoch 2; run C resumes B's checkpoint and trains epoch 3. C's losses,
weights, EMA weights and optimizer state must equal A's.

The data pipeline here has no random transform: mmengine does not store
the python / numpy random state in checkpoints, so random augmentations
(flip, mosaic, SADA) draw differently after a resume.
"""
import copy
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLASSES = ('disk', 'rectangle', 'triangle', 'ring', 'cross')


class _Record(Hook):
    priority = 'LOWEST'

    def __init__(self, stop_after_epoch=None):
        self.losses = []
        self.stop_after_epoch = stop_after_epoch

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses.append((runner.iter, {
            k: float(v.detach())
            for k, v in outputs.items()
        }, runner.optim_wrapper.get_lr()['lr'][0]))

    def after_train_epoch(self, runner):
        if self.stop_after_epoch == runner.epoch + 1:
            runner.train_loop.stop_training = True


def _cfg(data_root, work_dir):
    model = Config.fromfile(osp.join(REPO, 'configs',
                                     'damoyolo_ns_coco.py')).model
    model.bbox_head.num_classes = len(CLASSES)
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=(64, 64), keep_ratio=False),
        dict(type='PackDetInputs'),
    ]
    return dict(
        model=model,
        work_dir=work_dir,
        train_dataloader=dict(
            batch_size=4,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True),
            dataset=dict(
                type='DAMOYOLOCocoDataset',
                data_root=data_root,
                ann_file='annotations/instances_train.json',
                data_prefix=dict(img='train/'),
                metainfo=dict(classes=CLASSES),
                filter_cfg=dict(filter_empty_gt=False),
                indices=12,
                pipeline=pipeline)),
        train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=3),
        optim_wrapper=dict(
            optimizer=dict(type='AdamW', lr=0.002, weight_decay=0.01),
            paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.)),
        param_scheduler=[
            dict(type='QuadraticWarmupLR', by_epoch=True, begin=0, end=1,
                 convert_to_iter_based=True),
            dict(type='CosineAnnealingLR', eta_min_ratio=0.05, begin=1,
                 T_max=1, end=2, by_epoch=True, convert_to_iter_based=True),
            dict(type='ConstantLR', by_epoch=True, factor=1, begin=2,
                 end=3),
        ],
        custom_hooks=[
            dict(type='CheckFiniteLossHook'),
            dict(type='EMAHook', ema_type='DAMOYOLOEMA', momentum=0.05,
                 gamma=4, update_buffers=True, priority=49),
        ],
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1),
            logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0),
        default_scope='mmdet',
        log_level='WARNING')


def _run(cfg, record, resume_from=None):
    cfg = copy.deepcopy(cfg)
    if resume_from is not None:
        cfg.update(resume=True, load_from=resume_from)
    runner = Runner(**cfg)
    runner.register_hook(record)
    torch.set_num_threads(1)  # same reduction order in every run
    runner.train()
    ema = [h for h in runner.hooks if type(h).__name__ == 'EMAHook'][0]
    return runner, ema


def test_resume_equals_uninterrupted(demo_data_root, tmp_path):
    threads = torch.get_num_threads()
    try:
        rec_a, rec_b, rec_c = _Record(), _Record(stop_after_epoch=2), \
            _Record()
        run_a, ema_a = _run(_cfg(demo_data_root, str(tmp_path / 'a')), rec_a)
        run_b, _ = _run(_cfg(demo_data_root, str(tmp_path / 'b')), rec_b)
        ckpt = str(tmp_path / 'b' / 'epoch_2.pth')
        assert osp.isfile(ckpt) and run_b.epoch == 2
        run_c, ema_c = _run(_cfg(demo_data_root, str(tmp_path / 'c')),
                            rec_c, resume_from=ckpt)
    finally:
        torch.set_num_threads(threads)

    assert len(rec_a.losses) == 9 and len(rec_b.losses) == 6
    assert len(rec_c.losses) == 3
    # B is A up to the stop; C continues exactly where A went on
    assert rec_b.losses == rec_a.losses[:6]
    assert rec_c.losses == rec_a.losses[6:]
    assert run_c.iter == run_a.iter == 9 and run_c.epoch == 3
    # the lr follows the warm-up, the cosine and the flat tail
    lrs = [lr for _, _, lr in rec_a.losses]
    assert lrs[0] < lrs[2] and lrs[3] > lrs[5] and lrs[6] == lrs[8]

    for key, value in run_a.model.state_dict().items():
        torch.testing.assert_close(run_c.model.state_dict()[key], value,
                                   rtol=0, atol=0, msg=key)
    ema_sd_a, ema_sd_c = ema_a.ema_model.state_dict(), \
        ema_c.ema_model.state_dict()
    assert int(ema_sd_a['steps']) == int(ema_sd_c['steps']) == 9
    for key, value in ema_sd_a.items():
        torch.testing.assert_close(ema_sd_c[key], value, rtol=0, atol=0,
                                   msg=key)
    # the EMA really differs from the raw weights
    raw = run_a.model.state_dict()
    assert any(not torch.equal(raw[k[len('module.'):]], v)
               for k, v in ema_sd_a.items() if k.startswith('module.')
               and v.dtype.is_floating_point)
    opt_a = run_a.optim_wrapper.state_dict()['state']
    opt_c = run_c.optim_wrapper.state_dict()['state']
    assert opt_a.keys() == opt_c.keys()
    for idx in opt_a:
        for name, value in opt_a[idx].items():
            torch.testing.assert_close(opt_c[idx][name], value, rtol=0,
                                       atol=0)
