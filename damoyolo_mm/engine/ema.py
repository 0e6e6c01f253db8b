"""Exponential moving average of the weights with DAMO-YOLO's warm-up ramp."""
import math
from typing import Optional

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmengine.model import ExponentialMovingAverage
from torch import Tensor


@MODELS.register_module()
class DAMOYOLOEMA(ExponentialMovingAverage):
    r"""EMA whose decay ramps up as ``(1 - momentum) * (1 - exp(-t / gamma))``.

    DAMO-YOLO keeps ``ema = d * ema + (1 - d) * w`` after the optimizer step
    of iteration ``t`` (0-based) with the decay

    .. math::

        d(t) = d_{max} \cdot (1 - e^{-t / \gamma}),\quad d_{max} = 0.9998,
        \ \gamma = 2000.

    mmengine's :class:`ExponentialMovingAverage` uses the opposite convention
    (``momentum`` is the weight of the *new* value), so this class works with
    ``momentum = 1 - d_max`` and applies, at update ``t``,

    .. math::

        m(t) = 1 - d(t) = momentum + (1 - momentum) \cdot e^{-t / \gamma}.

    ``t`` is the number of updates done before (``self.steps``), which equals
    the 0-based training iteration when the EMA starts at iteration 0: the
    first update (``t = 0``, ``d = 0``) copies the weights, as the reference
    trainer does. ``steps`` is a buffer, so the ramp resumes correctly.

    Use ``update_buffers=True`` to average BatchNorm statistics too (the
    reference averages every floating-point entry of the state dict).

    Args:
        model (nn.Module): The model to be averaged.
        momentum (float): ``1 - d_max``; the weight of the new value once the
            ramp has converged. Defaults to 0.0002 (decay 0.9998).
        gamma (float): Time constant of the ramp in updates. Defaults to 2000.
        interval (int): Interval between two updates. Defaults to 1.
        device (torch.device, optional): Where to keep the averaged copy.
        update_buffers (bool): Whether buffers (BN statistics) are averaged
            as well. Defaults to True.
    """

    def __init__(self,
                 model: nn.Module,
                 momentum: float = 0.0002,
                 gamma: float = 2000.,
                 interval: int = 1,
                 device: Optional[torch.device] = None,
                 update_buffers: bool = True) -> None:
        super().__init__(
            model,
            momentum=momentum,
            interval=interval,
            device=device,
            update_buffers=update_buffers)
        if not gamma > 0:
            raise ValueError(f'gamma must be > 0, got {gamma}')
        self.gamma = float(gamma)

    def momentum_at(self, steps: int) -> float:
        """Weight of the new value at update number ``steps`` (mmengine
        convention, ``1 - decay``)."""
        return self.momentum + (1. - self.momentum) * math.exp(
            -float(steps) / self.gamma)

    def decay_at(self, steps: int) -> float:
        """DAMO-YOLO's decay ``d(t) = (1 - momentum)(1 - exp(-t/gamma))``."""
        return 1. - self.momentum_at(steps)

    def avg_func(self, averaged_param: Tensor, source_param: Tensor,
                 steps: int) -> None:
        """Move ``averaged_param`` towards ``source_param`` in place."""
        averaged_param.lerp_(source_param, self.momentum_at(int(steps)))
