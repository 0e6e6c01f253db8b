"""A diverging training (lr=1e6) stops at once, naming the iteration, the
loss terms and a hint, before the assigner sees NaN, and saves nothing."""
import os
import os.path as osp
import re

import pytest
import torch
import torch.nn as nn

from damoyolo_mm.engine.hooks import CheckFiniteLossHook
from damoyolo_mm.models.finite_check import (NonFiniteLossError,
                                             check_finite_losses,
                                             check_finite_outputs)
from safety_helpers import REPO, tiny_config


def test_lr_1e6_stops_naming_the_iteration(demo_data_root, tmp_path,
                                           load_tool):
    config = tmp_path / 'cfg.py'
    config.write_text(tiny_config(demo_data_root))
    work = tmp_path / 'work'
    threads = torch.get_num_threads()
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        with pytest.raises(NonFiniteLossError) as err:
            load_tool('train').main([
                str(config), '--work-dir', str(work), '--cfg-options',
                'optim_wrapper.optimizer.lr=1000000.0',
                'visualizer.name=nan_guard'
            ])
    finally:
        os.chdir(cwd)
        torch.set_num_threads(threads)
    text = str(err.value)
    assert 'at iteration ' in text, text
    assert 'lower the learning rate' in text and 'check the data' in text
    # the loss terms (of this or of the last logged iteration) are named
    assert 'loss_cls' in text, text
    # nothing poisoned on disk: a checkpoint is only written before the
    # failing iteration and holds finite weights. Where the weights explode
    # depends on the CPU's kernels (AVX2: in epoch 1, before the first
    # checkpoint; AVX-512: in epoch 2), so either case is accepted.
    failed_at = int(re.search(r'at iteration (\d+)', text).group(1))
    for name in sorted(n for n in os.listdir(work) if n.endswith('.pth')):
        ckpt = torch.load(work / name, map_location='cpu', weights_only=True)
        assert ckpt['meta']['iter'] < failed_at, (name, failed_at)
        assert all(torch.isfinite(v).all()
                   for v in ckpt['state_dict'].values()
                   if v.is_floating_point()), name
    if not [n for n in os.listdir(work) if n.endswith('.pth')]:
        assert not osp.exists(work / 'last_checkpoint')


def test_checks_name_terms_and_levels():
    with pytest.raises(NonFiniteLossError, match=r'cls_scores\[1\]: 2 nan'):
        check_finite_outputs(
            'the assigner',
            cls_scores=[torch.zeros(2), torch.tensor([float('nan')] * 2)],
            bbox_preds=[torch.zeros(2)])
    check_finite_outputs('the assigner', cls_scores=[torch.zeros(3)])
    with pytest.raises(NonFiniteLossError, match='in loss_dfl'):
        check_finite_losses(dict(loss_cls=torch.tensor(1.),
                                 loss_dfl=torch.tensor(float('inf'))))
    check_finite_losses(dict(loss_cls=torch.tensor(1.),
                             loss_list=[torch.tensor(1.)]))


def test_gradient_check_before_the_optimizer_step():
    """A NaN gradient with a finite loss stops before the weights move."""
    from types import SimpleNamespace
    import logging
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    runner = SimpleNamespace(
        optim_wrapper=SimpleNamespace(optimizer=optimizer), model=model,
        iter=4, epoch=1, logger=logging.getLogger('test'))
    hook = CheckFiniteLossHook()
    hook.before_train(runner)
    before = model.weight.detach().clone()
    model.weight.grad = torch.tensor([[float('nan'), 0.]])
    model.bias.grad = torch.zeros(1)
    with pytest.raises(
            NonFiniteLossError,
            match=r'gradients .*at iteration 5 \(epoch 2\).*weight'):
        optimizer.step()
    assert torch.equal(model.weight.detach(), before)
    model.weight.grad = torch.zeros(1, 2)
    optimizer.step()  # finite gradients pass
    hook.after_train(runner)
    model.weight.grad = torch.tensor([[float('nan'), 0.]])
    optimizer.step()  # the check is removed after training
