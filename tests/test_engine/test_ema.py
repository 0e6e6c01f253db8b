"""DAMOYOLOEMA: DAMO-YOLO's EMA ramp in mmengine's convention."""
import math

import pytest
import torch
import torch.nn as nn
from mmdet.registry import MODELS

from damoyolo_mm.engine import DAMOYOLOEMA


def _decay(t, d_max=0.9998, gamma=2000.):
    """The reference decay: d(t) = d_max * (1 - exp(-t / gamma))."""
    return d_max * (1 - math.exp(-t / gamma))


@pytest.mark.parametrize('t', [0, 1, 10, 500, 2000, 10000, 100000])
def test_momentum_is_one_minus_reference_decay(t):
    ema = DAMOYOLOEMA(nn.Linear(2, 2))
    assert ema.momentum_at(t) == pytest.approx(1 - _decay(t), rel=1e-12)
    assert ema.decay_at(t) == pytest.approx(_decay(t), rel=1e-12,
                                            abs=1e-15)


def test_updates_follow_the_reference_recursion():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    ema = MODELS.build(dict(type='DAMOYOLOEMA', model=model, gamma=20.))
    # the reference: a copy of the model, updated after every step with
    # ema = d(t) * ema + (1 - d(t)) * w for every floating state entry
    ref = {k: v.clone() for k, v in model.state_dict().items()}
    for t in range(60):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.1)
            model[1].running_mean.add_(torch.randn(4))
        ema.update_parameters(model)
        d = _decay(t, gamma=20.)
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                ref[k] = ref[k] * d + (1 - d) * v
    ours = ema.module.state_dict()
    for k, v in ref.items():
        if v.dtype.is_floating_point:
            torch.testing.assert_close(ours[k], v, rtol=1e-5, atol=1e-6)
    assert int(ema.steps) == 60
    # BN statistics are averaged too (update_buffers=True by default)
    assert not torch.allclose(ours['1.running_mean'],
                              model.state_dict()['1.running_mean'])


def test_first_update_copies_and_steps_resume():
    model = nn.Linear(3, 1)
    ema = DAMOYOLOEMA(model)
    with torch.no_grad():
        model.weight.fill_(2.)
    ema.update_parameters(model)
    torch.testing.assert_close(ema.module.weight, model.weight)
    state = ema.state_dict()
    assert int(state['steps']) == 1
    other = DAMOYOLOEMA(nn.Linear(3, 1))
    other.load_state_dict(state)
    assert int(other.steps) == 1


def test_gamma_must_be_positive():
    with pytest.raises(ValueError):
        DAMOYOLOEMA(nn.Linear(1, 1), gamma=0)
