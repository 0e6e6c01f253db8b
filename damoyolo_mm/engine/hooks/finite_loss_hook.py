"""Stop training as soon as a loss becomes NaN or infinite."""
import math
from typing import Optional, Sequence

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook


class NonFiniteLossError(FloatingPointError):
    """Raised by :class:`CheckFiniteLossHook` when a loss is NaN / inf."""


def _as_float(value) -> Optional[float]:
    if isinstance(value, torch.Tensor):
        if value.numel() == 0:
            return None
        # a multi-element tensor is reported by its first bad element
        value = value.detach().float().reshape(-1)
        bad = ~torch.isfinite(value)
        return float(value[bad][0]) if bool(bad.any()) else float(
            value.mean())
    if isinstance(value, (int, float)):
        return float(value)
    return None


@HOOKS.register_module()
class CheckFiniteLossHook(Hook):
    """Check the training losses after every ``interval`` iterations.

    mmengine's ``CheckInvalidLossHook`` only checks the total loss every 50
    iterations and says neither when nor which term broke. This hook checks
    every logged value (``loss``, ``loss_cls``, ``loss_bbox``, ...) returned
    by ``train_step`` and raises :class:`NonFiniteLossError` naming the
    iteration (1-based, as in the training log), the epoch and every
    non-finite key with its value. It runs with a very high priority, i.e.
    before the EMA update and before any checkpoint of that iteration, so no
    NaN weights reach the EMA copy or the disk.

    Args:
        interval (int): Check every ``interval`` iterations. Defaults to 1.
        keys (Sequence[str], optional): Only check these keys; by default
            every numeric value of the log dict is checked.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 interval: int = 1,
                 keys: Optional[Sequence[str]] = None) -> None:
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'interval must be a positive int, got '
                             f'{interval!r}')
        self.interval = interval
        self.keys = None if keys is None else tuple(keys)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        """Raise if a logged loss of this iteration is not finite."""
        if not self.every_n_train_iters(runner, self.interval):
            return
        if not outputs:
            return
        bad = []
        for key, value in outputs.items():
            if self.keys is not None and key not in self.keys:
                continue
            number = _as_float(value)
            if number is not None and not math.isfinite(number):
                bad.append(f'{key}={number}')
        if bad:
            message = (f'non-finite loss at iteration {runner.iter + 1} '
                       f'(epoch {runner.epoch + 1}, batch {batch_idx + 1}): '
                       + ', '.join(bad))
            runner.logger.error(message)
            raise NonFiniteLossError(message)
