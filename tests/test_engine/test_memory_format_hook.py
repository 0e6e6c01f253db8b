"""MemoryFormatHook: channels-last weights before anything copies them."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import EMAHook

from damoyolo_mm.engine.hooks import MemoryFormatHook


def test_converts_before_the_ema_copy():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8),
                          nn.Conv2d(8, 8, 3, groups=8))
    runner = SimpleNamespace(model=model)
    params = [p for p in model.parameters()]
    hooks = sorted([EMAHook(ema_type='DAMOYOLOEMA'), MemoryFormatHook()],
                   key=lambda h: {'VERY_HIGH': 10, 'NORMAL': 50}.get(
                       h.priority, 50))
    assert isinstance(hooks[0], MemoryFormatHook)
    for hook in hooks:
        hook.before_run(runner)
    for m in (model, hooks[1].ema_model.module):
        for conv in (m[0], m[2]):
            assert conv.weight.is_contiguous(
                memory_format=torch.channels_last)
        # (a depthwise weight has one input channel: both layouts agree)
        assert not m[0].weight.is_contiguous()
    # same Parameter objects (an optimizer built before keeps working)
    assert all(a is b for a, b in zip(params, model.parameters()))
    out = model(torch.rand(2, 3, 16, 16))
    assert out.is_contiguous(memory_format=torch.channels_last)
    back = MemoryFormatHook('contiguous')
    back.before_run(runner)
    assert model[0].weight.is_contiguous()


def test_unknown_format():
    with pytest.raises(ValueError, match='memory_format'):
        MemoryFormatHook('nhwc')


def test_torch_threads_hook():
    from damoyolo_mm.engine.hooks import TorchThreadsHook
    threads = torch.get_num_threads()
    try:
        TorchThreadsHook(1).before_run(SimpleNamespace())
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(ValueError):
        TorchThreadsHook(0)
