"""The training recipe in every variant config, and short runs of each."""
import copy
import math
import os.path as osp

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DATASETS
from mmengine.runner import Runner

from damoyolo_mm.datasets.transforms import SADA

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLASSES = ('disk', 'rectangle', 'triangle', 'ring', 'cross')

# variant: optimizer, lr per 64 images, size, mosaic scale, shear
RECIPE = {
    'ns': ('AdamW', 0.001, 416, (0.75, 1.25), 0.2),
    'nm': ('AdamW', 0.001, 416, (0.1, 2.0), 0.2),
    'nl': ('AdamW', 0.001, 416, (0.1, 2.0), 0.2),
    't': ('SGD', 0.01, 640, (0.1, 2.0), 0.2),
    's': ('SGD', 0.01, 640, (0.1, 2.0), 2.0),
    'm': ('SGD', 0.01, 640, (0.1, 2.0), 2.0),
    'l': ('SGD', 0.01, 640, (0.1, 2.0), 2.0),
}


def _cfg(variant):
    return Config.fromfile(
        osp.join(REPO, 'configs', f'damoyolo_{variant}_coco.py'))


def _types(pipeline):
    return [t['type'] for t in pipeline]


@pytest.mark.parametrize('variant', sorted(RECIPE))
def test_recipe_values(variant):
    opt, lr, size, scale, shear = RECIPE[variant]
    cfg = _cfg(variant)
    o = cfg.optim_wrapper
    assert o.optimizer.type == opt and o.optimizer.lr == lr
    assert o.optimizer.weight_decay == (0.01 if opt == 'AdamW' else 5e-4)
    if opt == 'SGD':
        assert o.optimizer.momentum == 0.9 and o.optimizer.nesterov
    assert o.paramwise_cfg == dict(norm_decay_mult=0., bias_decay_mult=0.)
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=64)
    assert cfg.train_cfg.max_epochs == 300 and cfg.train_cfg.val_interval == 10
    pre = cfg.model.data_preprocessor
    assert pre.mean == [0, 0, 0] and pre.std == [1, 1, 1] and pre.bgr_to_rgb

    train = cfg.train_dataloader.dataset
    assert train.type == 'DAMOYOLOMixDataset'
    assert train.dataset.type == 'DAMOYOLOCocoDataset'
    assert cfg.val_dataloader.dataset.type == 'DAMOYOLOCocoDataset'
    p = train.pipeline
    assert _types(p) == [
        'DAMOYOLOMosaic', 'DAMOYOLORandomAffine', 'DAMOYOLOMixUp', 'Resize',
        'RandomFlip', 'SADA', 'PackDetInputs'
    ]
    assert p[0].img_scale == (640, 640) and p[0].get('prob', 1.0) == 1.0
    assert p[1].img_scale == (640, 640)
    assert tuple(p[1].scaling_ratio_range) == scale
    assert p[1].max_shear_degree == shear
    assert p[1].max_rotate_degree == 10 and p[1].max_translate_ratio == 0.2
    assert p[2].prob == 0.15 and tuple(p[2].ratio_range) == (0.5, 1.5)
    assert tuple(p[3].scale) == (size, size) and p[3].keep_ratio is False
    assert p[4].prob == 0.5
    assert p[5].get('box_prob', 0.3) == 0.3
    test_resize = [t for t in cfg.val_dataloader.dataset.pipeline
                   if t['type'] == 'Resize'][0]
    assert tuple(test_resize.scale) == (size, size)
    assert test_resize.keep_ratio is False

    hooks = {h['type']: h for h in cfg.custom_hooks}
    assert set(hooks) == {'CheckFiniteLossHook', 'EMAHook',
                          'PipelineSwitchHook', 'SADAProgressHook',
                          'MemoryFormatHook', 'OfficialCheckpointHook'}
    assert hooks['MemoryFormatHook'].memory_format == 'channels_last'
    ema = hooks['EMAHook']
    assert ema.ema_type == 'DAMOYOLOEMA' and ema.momentum == 0.0002
    assert ema.gamma == 2000 and ema.update_buffers
    switch = hooks['PipelineSwitchHook']
    assert switch.switch_epoch == 300 - 16
    # the tail: the same pipeline without the mosaic / affine / mixup part
    assert switch.switch_pipeline == p[3:]
    assert cfg.default_hooks.checkpoint.interval == 10
    assert cfg.default_hooks.checkpoint.save_best == 'coco/bbox_mAP'
    assert cfg.val_evaluator.type == 'CocoMetric'


def _demo_train_set(cfg, data_root):
    ds = copy.deepcopy(cfg.train_dataloader.dataset)
    ds.dataset.update(
        data_root=data_root,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        metainfo=dict(classes=CLASSES))
    return ds


@pytest.fixture
def one_thread():
    """One intra-op thread: on a shared 2-core machine two threads per
    process can be ten times slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize('variant', sorted(RECIPE))
def test_few_iterations_reduce_the_loss(variant, demo_data_root, one_thread):
    """Two samples from the variant's own training pipeline (mosaic, affine,
    mixup, resize, flip, SADA), shrunk to 64 px, trained for 3-6 steps with
    the variant's optimizer (lr per 64 images, unscaled) on that batch.

    The class biases start at 0 (p = 0.5) instead of the prior bias
    (p = 0.01): from the prior, DAMO-YOLO's loss first *rises* for a while,
    because the box losses are weighted by the positives' scores, which
    grow from 0.01; a few steps would show nothing.
    """
    import random

    import numpy as np
    cfg = _cfg(variant)
    cfg.model.bbox_head.num_classes = len(CLASSES)
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    dataset = DATASETS.build(_demo_train_set(cfg, demo_data_root))
    for t in dataset.pipeline:
        if isinstance(t, SADA):
            t.set_progress(1.0)
    samples = [dataset[i] for i in (0, 1)]
    size = RECIPE[variant][2]
    assert samples[0]['inputs'].shape[-2:] == (size, size)

    from mmdet.registry import MODELS
    model = MODELS.build(cfg.model)
    model.init_weights()
    for conv in model.bbox_head.gfl_cls:
        nn.init.zeros_(conv.bias)
    model.train()
    batch = model.data_preprocessor(pseudo_collate(samples), True)
    inputs = F.interpolate(batch['inputs'], size=(64, 64), mode='bilinear',
                           align_corners=False)
    data_samples = batch['data_samples']
    for s in data_samples:
        s.gt_instances.bboxes = s.gt_instances.bboxes * (64 / size)
        s.set_metainfo(dict(img_shape=(64, 64), batch_input_shape=(64, 64)))
    assert sum(len(s.gt_instances) for s in data_samples) > 0
    optim = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    losses = []
    # AdamW's first steps are slower to pay off than SGD's
    for _ in range(6 if RECIPE[variant][0] == 'AdamW' else 3):
        loss, log = model.parse_losses(model.loss(inputs, data_samples))
        optim.update_params(loss)
        losses.append(float(loss.detach()))
    assert all(math.isfinite(v) for v in losses), losses
    assert losses[-1] < 0.97 * losses[0], losses


def test_runner_with_all_recipe_hooks(demo_data_root, tmp_path, one_thread):
    """Nano config under mmengine's Runner at a tiny size: auto-scaled lr,
    EMA, pipeline switch on the DAMOYOLOMixDataset, SADA progress."""
    cfg = _cfg('ns')
    cfg.model.bbox_head.num_classes = len(CLASSES)
    small = (96, 96)

    def shrink(pipeline):
        for t in pipeline:
            if 'img_scale' in t:
                t['img_scale'] = small
            if t['type'] == 'Resize':
                t['scale'] = (64, 64)
        return pipeline

    ds = _demo_train_set(cfg, demo_data_root)
    ds.dataset.indices = 8
    shrink(ds.pipeline)
    switch = [h for h in cfg.custom_hooks
              if h['type'] == 'PipelineSwitchHook'][0]
    shrink(switch.switch_pipeline)
    switch.switch_epoch = 1
    cfg.train_dataloader.update(
        dataset=ds, batch_size=4, num_workers=0, persistent_workers=False)
    cfg.train_cfg.update(max_epochs=2)
    cfg.train_cfg.pop('dynamic_intervals')
    cfg.update(
        val_dataloader=None, val_cfg=None, val_evaluator=None,
        test_dataloader=None, test_cfg=None, test_evaluator=None,
        work_dir=str(tmp_path), log_level='WARNING')
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    runner = Runner.from_cfg(cfg)
    runner.train()

    assert runner.iter == 4 and runner.epoch == 2
    conv = runner.model.backbone.modules()
    weights = [m.weight for m in conv if isinstance(m, nn.Conv2d)]
    assert all(w.is_contiguous(memory_format=torch.channels_last)
               for w in weights)
    # lr 0.001 per 64 images, batch 4
    group = runner.optim_wrapper.optimizer.param_groups[0]
    assert group['initial_lr'] == pytest.approx(0.001 * 4 / 64)
    ema = [h for h in runner.hooks if type(h).__name__ == 'EMAHook'][0]
    assert int(ema.ema_model.steps) == 4
    wrapper = runner.train_dataloader.dataset
    types = [type(t).__name__ for t in wrapper.pipeline]
    assert types == ['Resize', 'RandomFlip', 'SADA', 'PackDetInputs']
    sada = [t for t in wrapper.pipeline if isinstance(t, SADA)][0]
    assert sada.progress == pytest.approx(3 / 4)
    ckpt = torch.load(osp.join(str(tmp_path), 'epoch_2.pth'),
                      map_location='cpu', weights_only=False)
    # the checkpoint's weights are the EMA weights
    ema_weights = ema.ema_model.module.state_dict()
    for key, value in ckpt['state_dict'].items():
        torch.testing.assert_close(value, ema_weights[key])
