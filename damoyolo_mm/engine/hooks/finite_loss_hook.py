"""Stop training as soon as a loss or a gradient becomes NaN or infinite."""
import math
from typing import Optional, Sequence

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook

from damoyolo_mm.models.finite_check import (HINT, NonFiniteLossError,
                                             last_logged_losses)


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

    Gradients are checked before every optimizer step (a step pre-hook on
    the runner's optimizer): a NaN / inf gradient raises
    :class:`NonFiniteLossError` naming the iteration and the first
    parameters concerned, and the weights stay untouched. (The DAMO-YOLO
    head and detector check predictions and loss terms even earlier, see
    :mod:`damoyolo_mm.models.finite_check`.)

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
        self._grad_hooks = []

    def before_train(self, runner) -> None:
        """Check the gradients before every optimizer step."""
        wrappers = getattr(runner.optim_wrapper, 'optim_wrappers', None)
        wrappers = wrappers.values() if isinstance(wrappers, dict) else [
            runner.optim_wrapper]
        names = {id(p): n for n, p in runner.model.named_parameters()}
        for wrapper in wrappers:
            optimizer = getattr(wrapper, 'optimizer', None)
            if isinstance(optimizer, torch.optim.Optimizer):
                self._grad_hooks.append(optimizer.register_step_pre_hook(
                    lambda opt, args, kwargs: self._check_grads(
                        runner, opt, names)))

    def after_train(self, runner) -> None:
        for handle in self._grad_hooks:
            handle.remove()
        self._grad_hooks = []

    def _check_grads(self, runner, optimizer, names) -> None:
        params = [p for g in optimizer.param_groups for p in g['params']
                  if p.grad is not None]
        if not params:
            return
        # one L2 norm per parameter: NaN / inf when an element is, inf also
        # when the gradients are beyond float range (the step would be too)
        finite = torch.isfinite(torch.stack(
            torch._foreach_norm([p.grad for p in params]))).tolist()
        if all(finite):
            return
        bad = [names.get(id(p), '?') for p, ok in zip(params, finite)
               if not ok]
        more = f' ... ({len(bad)} in all)' if len(bad) > 3 else ''
        last = last_logged_losses()
        message = (
            f'non-finite gradients (NaN / inf, or a norm beyond float range) '
            f'at iteration {runner.iter + 1} (epoch {runner.epoch + 1}), '
            f'stopped before the optimizer step: {", ".join(bad[:3])}{more}'
            + (f'. Last logged losses: {last}' if last else '')
            + f'. The training diverged: {HINT}')
        runner.logger.error(message)
        raise NonFiniteLossError(message)

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
                       + ', '.join(bad) + f'. {HINT}')
            runner.logger.error(message)
            raise NonFiniteLossError(message)
