"""CheckFiniteLossHook: a NaN / inf loss stops training, naming when."""
import logging
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from damoyolo_mm.engine.hooks import CheckFiniteLossHook, NonFiniteLossError


def _runner_stub(iteration, epoch=0):
    return SimpleNamespace(iter=iteration, epoch=epoch,
                           logger=logging.getLogger('test'))


def test_names_iteration_and_non_finite_keys():
    hook = CheckFiniteLossHook()
    outputs = dict(
        loss=torch.tensor(float('nan')),
        loss_cls=torch.tensor(float('nan')),
        loss_bbox=torch.tensor(0.5),
        loss_dfl=torch.tensor(float('inf')))
    with pytest.raises(NonFiniteLossError) as err:
        hook.after_train_iter(_runner_stub(6, epoch=1), 2, outputs=outputs)
    text = str(err.value)
    assert 'iteration 7' in text and 'epoch 2' in text
    assert 'loss_cls=nan' in text and 'loss_dfl=inf' in text
    assert 'loss_bbox' not in text
    # finite losses pass, and so do non-numeric entries
    hook.after_train_iter(
        _runner_stub(0), 0,
        outputs=dict(loss=torch.tensor(1.), note='text', empty=torch.empty(0)))


def test_interval_and_key_selection():
    outputs = dict(loss=torch.tensor(float('nan')), acc=torch.tensor(1.))
    every_2 = CheckFiniteLossHook(interval=2)
    every_2.after_train_iter(_runner_stub(0), 0, outputs=outputs)  # iter 1
    with pytest.raises(NonFiniteLossError):
        every_2.after_train_iter(_runner_stub(1), 1, outputs=outputs)
    only_acc = CheckFiniteLossHook(keys=['acc'])
    only_acc.after_train_iter(_runner_stub(0), 0, outputs=outputs)
    with pytest.raises(ValueError):
        CheckFiniteLossHook(interval=0)


class _ToyData(Dataset):

    def __len__(self):
        return 12

    def __getitem__(self, i):
        return dict(inputs=torch.full((2, ), float(i)))


class _NaNAfter(BaseModel):
    """Linear model whose loss becomes NaN at a given training iteration."""

    def __init__(self, bad_iter):
        super().__init__()
        self.fc = nn.Linear(2, 1)
        self.bad_iter = bad_iter
        self.calls = 0

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack(inputs) if isinstance(inputs, list) else inputs
        loss = self.fc(x).pow(2).mean()
        self.calls += 1
        if self.calls == self.bad_iter:
            loss = loss * float('nan')
        return dict(loss_main=loss, loss_aux=torch.tensor(1.))


def test_runner_stops_at_the_nan_iteration(tmp_path):
    runner = Runner(
        model=_NaNAfter(bad_iter=5),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=_ToyData(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=4,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=3),
        custom_hooks=[dict(type='CheckFiniteLossHook')],
        default_hooks=dict(checkpoint=None, logger=None),
        default_scope='mmdet')
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    # 3 iterations per epoch: the 5th is the 2nd of epoch 2. Its NaN loss
    # gives NaN gradients, caught before the optimizer step (the weights
    # stay finite); the message names the parameters and the last losses.
    assert 'gradients' in str(err.value)
    assert 'at iteration 5 (epoch 2)' in str(err.value)
    assert 'fc.weight' in str(err.value)
    assert 'loss_main=' in str(err.value)
    assert runner.iter == 4
    assert all(bool(torch.isfinite(p).all())
               for p in runner.model.parameters())
