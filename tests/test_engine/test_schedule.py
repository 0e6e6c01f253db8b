"""The DAMO-YOLO schedule and optimizer settings built from the configs."""
import copy
import math
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCHEDULES = osp.join(REPO, 'configs', '_base_', 'schedules')


def _closed_form(it, base, ipe, epochs=300, warm=5, tail=16, ratio=0.05):
    """lr of iteration ``it`` (0-based).

    Warm-up: mmengine's QuadraticWarmupLR gives base * ((it + 1) / T)^2,
    one iteration ahead of the reference trainer's base * (it / T)^2.
    Cosine and the flat tail are the reference's formulas (the tail keeps
    the cosine's last value, which exceeds the minimum by
    (base - min) * (1 - cos(pi / T_cos)) / 2, here 2e-5 relative to the
    minimum, < 1e-7 with COCO's ~460 iterations per epoch at batch 256).
    """
    t_warm, t_flat = warm * ipe, (epochs - tail) * ipe
    final = base * ratio
    if it < t_warm:
        return base * ((it + 1) / t_warm)**2
    if it >= t_flat:
        return final
    return final + 0.5 * (base - final) * (
        1 + math.cos(math.pi * (it - t_warm) / (t_flat - t_warm)))


def _lrs(cfg_file, base_lr, ipe, track):
    cfg = Config.fromfile(osp.join(SCHEDULES, cfg_file))
    model = nn.Linear(2, 2)
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    optim_cfg.optimizer.lr = base_lr
    optim = build_optim_wrapper(model, optim_cfg)
    scheds = []
    for s in copy.deepcopy(cfg.param_scheduler):
        s.setdefault('epoch_length', ipe)
        scheds.append(PARAM_SCHEDULERS.build(
            s, default_args=dict(optimizer=optim)))
    # warm-up and cosine are converted to iterations
    assert not scheds[0].by_epoch and not scheds[1].by_epoch
    total = cfg.train_cfg.max_epochs * ipe
    seen = {}
    for it in range(total):
        if it in track:
            seen[it] = optim.param_groups[0]['lr']
        # what ParamSchedulerHook does after an iteration / an epoch
        for s in scheds:
            if not s.by_epoch:
                s.step()
        if (it + 1) % ipe == 0:
            for s in scheds:
                if s.by_epoch:
                    s.step()
    return cfg, seen


@pytest.mark.parametrize('cfg_file,base_lr', [
    ('damoyolo_sgd_300e.py', 0.01 * 256 / 64),
    ('damoyolo_adamw_300e.py', 0.001 * 256 / 64),
])
def test_lr_equals_closed_form(cfg_file, base_lr):
    ipe = 10  # iterations per epoch
    epochs = [0, 1, 2, 4, 5, 6, 50, 150, 283, 284, 290, 299]
    track = {e * ipe for e in epochs} | {e * ipe + 3 for e in epochs}
    track |= {5 * ipe - 1, 284 * ipe - 1, 300 * ipe - 1}
    cfg, seen = _lrs(cfg_file, base_lr, ipe, track)
    assert cfg.train_cfg.max_epochs == 300
    for it, lr in sorted(seen.items()):
        rel = 1e-6 if it < 284 * ipe else 3e-5  # see _closed_form
        assert lr == pytest.approx(
            _closed_form(it, base_lr, ipe), rel=rel,
            abs=1e-12), f'iteration {it} (epoch {it // ipe})'
    # landmarks: full lr after warm-up, minimum on the 16-epoch tail
    assert seen[5 * ipe - 1] == pytest.approx(base_lr)
    assert seen[284 * ipe] == pytest.approx(0.05 * base_lr, rel=3e-5)
    assert seen[300 * ipe - 1] == seen[284 * ipe]


def test_optimizers_and_weight_decay_groups():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, groups=8, bias=False), nn.GroupNorm(2, 8),
        nn.Conv2d(8, 4, 1, bias=True))
    names = {id(p): n for n, p in model.named_parameters()}
    expected = {
        'damoyolo_sgd_300e.py': ('SGD', 0.01, 5e-4),
        'damoyolo_adamw_300e.py': ('AdamW', 0.001, 1e-2),
    }
    for cfg_file, (opt_type, lr, wd) in expected.items():
        cfg = Config.fromfile(osp.join(SCHEDULES, cfg_file))
        assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=64)
        optim = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
        opt = optim.optimizer
        assert type(opt).__name__ == opt_type
        if opt_type == 'SGD':
            assert opt.defaults['nesterov'] and opt.defaults['momentum'] == 0.9
        else:
            assert 'momentum' not in cfg.optim_wrapper.optimizer
        decay = {}
        for group in opt.param_groups:
            for p in group['params']:
                decay[names[id(p)]] = group['weight_decay']
                assert group['lr'] == lr
        assert decay == {
            '0.weight': wd,  # conv
            '1.weight': 0., '1.bias': 0.,  # BN
            '3.weight': wd,  # depthwise conv keeps the decay
            '4.weight': 0., '4.bias': 0.,  # GroupNorm
            '5.weight': wd, '5.bias': 0.,  # conv bias
        }


def test_eval_schedule_and_tail_switch():
    cfg = Config.fromfile(osp.join(SCHEDULES, 'damoyolo_sgd_300e.py'))
    from mmengine.runner.utils import calc_dynamic_intervals
    milestones, intervals = calc_dynamic_intervals(
        cfg.train_cfg.val_interval, cfg.train_cfg.dynamic_intervals)
    import bisect

    def evaluated(done):  # EpochBasedTrainLoop's rule after `done` epochs
        interval = intervals[bisect.bisect(milestones, done + 1) - 1]
        return done % interval == 0 or done == 300

    evals = [e for e in range(1, 301) if evaluated(e)]
    assert evals == list(range(10, 281, 10)) + list(range(285, 301))
    # the pipeline switch of the dataset base happens at the tail's start
    data = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'datasets', 'coco_detection.py'))
    switch = [h for h in data.custom_hooks
              if h['type'] == 'PipelineSwitchHook'][0]
    assert switch['switch_epoch'] == cfg.max_epochs - cfg.num_last_epochs
    assert cfg.param_scheduler[2]['begin'] == switch['switch_epoch']
