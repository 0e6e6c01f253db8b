"""Stop a diverging training before NaN / inf values do harm.

A too high learning rate (or broken data) first makes the predictions
non-finite; fed to the AlignOTA assigner they end in an unrelated error
(``all elements of input should be between 0 and 1``) and, one step later,
in NaN weights. The DAMO-YOLO head checks its raw outputs before the
assigner and the detector checks the loss terms before the backward pass;
both raise :class:`NonFiniteLossError` naming the iteration (from mmengine's
message hub), the non-finite terms, the last logged losses and a hint.
:class:`~damoyolo_mm.engine.hooks.CheckFiniteLossHook` adds the gradient
check before the optimizer step.
"""
import math
from typing import Mapping, Sequence

import torch

HINT = ('lower the learning rate (optim_wrapper.optimizer.lr) or check the '
        'data of this batch (boxes, images)')


class NonFiniteLossError(FloatingPointError):
    """Predictions, losses or gradients became NaN / inf during training."""


def current_step() -> str:
    """``'iteration 7 (epoch 2)'`` from mmengine's message hub (1-based, as
    in the training log), or ``''`` outside a training run."""
    try:
        from mmengine.logging import MessageHub
        hub = MessageHub.get_current_instance()
        it, epoch = hub.get_info('iter'), hub.get_info('epoch')
    except Exception:  # noqa: B902  (no hub: not inside a runner)
        return ''
    if it is None:
        return ''
    return f'iteration {int(it) + 1}' + (
        f' (epoch {int(epoch) + 1})' if epoch is not None else '')


def last_logged_losses() -> str:
    """The loss terms of the last logged iteration, e.g.
    ``'loss=3.1, loss_cls=1.2'`` (``''`` if none)."""
    try:
        from mmengine.logging import MessageHub
        scalars = MessageHub.get_current_instance().log_scalars
        values = [f'{k[len("train/"):]}={v.current():.4g}'
                  for k, v in scalars.items()
                  if k.startswith('train/loss')]
    except Exception:  # noqa: B902  (no hub or empty buffers)
        return ''
    return ', '.join(values)


def _where(step: str) -> str:
    return f' at {step}' if step else ''


def _bad_counts(t: torch.Tensor) -> str:
    t = t.detach()
    nan = int(torch.isnan(t).sum())
    inf = int(torch.isinf(t).sum())
    return ', '.join(s for s in (f'{nan} nan' if nan else '',
                                 f'{inf} inf' if inf else '') if s)


def check_finite_outputs(where: str, **outputs: Sequence[torch.Tensor]) \
        -> None:
    """Raise :class:`NonFiniteLossError` if a tensor of ``outputs`` (name ->
    per-level tensors) holds NaN / inf; ``where`` says what comes next."""
    bad = []
    for name, tensors in outputs.items():
        for level, t in enumerate(tensors):
            if not bool(torch.isfinite(t.detach()).all()):
                bad.append(f'{name}[{level}]: {_bad_counts(t)}')
    if bad:
        step = current_step()
        last = last_logged_losses()
        raise NonFiniteLossError(
            f'non-finite predictions{_where(step)}, stopped before {where}: '
            + '; '.join(bad)
            + (f'. Last logged losses: {last}' if last else '')
            + f'. The training diverged: {HINT}')


def check_finite_losses(losses: Mapping) -> None:
    """Raise :class:`NonFiniteLossError` if a loss term is NaN / inf
    (before the backward pass)."""
    bad, shown = [], []
    for key, value in losses.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        total = 0.0
        for v in values:
            if torch.is_tensor(v) and v.numel():
                total += float(v.detach().float().sum())
            elif isinstance(v, (int, float)):
                total += float(v)
        shown.append(f'{key}={total:.4g}')
        if not math.isfinite(total):
            bad.append(key)
    if bad:
        step = current_step()
        raise NonFiniteLossError(
            f'non-finite loss{_where(step)} in {", ".join(bad)} '
            f'({", ".join(shown)}), stopped before the backward pass. The '
            f'training diverged: {HINT}')
