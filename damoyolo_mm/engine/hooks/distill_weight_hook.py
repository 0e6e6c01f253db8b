"""Hooks of DAMO-YOLO's feature distillation: the decaying loss weight and
gradient clipping of the student."""
import math
from typing import Optional, Union

import torch.nn as nn
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper

DATA_BATCH = Optional[Union[dict, tuple, list]]


def cosine_distill_weight(cur_iter: int,
                          span: int,
                          start_weight: float = 1.0,
                          end_weight: float = 0.1) -> float:
    r"""DAMO-YOLO's distillation weight at 0-based iteration ``cur_iter``.

    .. math::

        w(i) = w_{end} + (w_{start} - w_{end})
               \frac{1 + \cos(\pi \min(i, T) / T)}{2}

    i.e. half a cosine from ``start_weight`` at ``i = 0`` to ``end_weight``
    at ``i = T = span``; it stays at ``end_weight`` afterwards.
    """
    if span <= 0:
        raise ValueError(f'cosine_distill_weight: span must be > 0 '
                         f'iterations, got {span}')
    x = min(max(int(cur_iter), 0), int(span))
    return end_weight + (start_weight - end_weight) * 0.5 * (
        1. + math.cos(math.pi * x / span))


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if is_model_wrapper(model) else model


@HOOKS.register_module()
class DistillWeightHook(Hook):
    """Set the distillation loss weight of the model every iteration.

    Before each training iteration ``i`` (0-based, ``runner.iter``) the
    model's ``distill_weight`` attribute is set to
    :func:`cosine_distill_weight` ``(i, span, start_weight, end_weight)``
    and the value is put in the message hub as ``train/distill_weight``
    (so it appears in the training log lines).

    DAMO-YOLO decays the weight from 1 to 0.1 over the *whole training*:
    its trainer divides by the length of the train loader, which is the
    iteration-based sampler of all epochs (``total_epochs x
    iters_per_epoch``). ``span=None`` reproduces that with
    ``runner.max_iters``.

    Args:
        start_weight (float): Weight at iteration 0. Defaults to 1.0.
        end_weight (float): Weight at the end of the span. Defaults to 0.1.
        span (int, optional): Length of the decay, in iterations (or in
            epochs with ``by_epoch=True``). Defaults to None: the whole
            training (``runner.max_iters``).
        by_epoch (bool): Whether ``span`` counts epochs (converted with the
            length of the train dataloader). Defaults to False.
    """

    priority = 'NORMAL'

    def __init__(self,
                 start_weight: float = 1.0,
                 end_weight: float = 0.1,
                 span: Optional[int] = None,
                 by_epoch: bool = False) -> None:
        if span is not None and (not isinstance(span, int) or span <= 0):
            raise ValueError(f'DistillWeightHook: span must be a positive '
                             f'integer or None, got {span!r}')
        if by_epoch and span is None:
            raise ValueError('DistillWeightHook: by_epoch=True needs `span` '
                             '(a number of epochs)')
        self.start_weight = float(start_weight)
        self.end_weight = float(end_weight)
        self.span = span
        self.by_epoch = by_epoch
        self.span_iters: Optional[int] = None

    def _resolve_span(self, runner) -> int:
        if self.span is None:
            return int(runner.max_iters)
        if self.by_epoch:
            return int(self.span) * len(runner.train_dataloader)
        return int(self.span)

    def weight_at(self, cur_iter: int) -> float:
        """Weight at iteration ``cur_iter`` (after :meth:`before_train`)."""
        if self.span_iters is None:
            raise RuntimeError('DistillWeightHook: span not resolved yet '
                               '(before_train has not run)')
        return cosine_distill_weight(cur_iter, self.span_iters,
                                     self.start_weight, self.end_weight)

    def before_train(self, runner) -> None:
        model = _unwrap(runner.model)
        if not hasattr(model, 'distill_weight'):
            raise AttributeError(
                f'DistillWeightHook: the model {type(model).__name__} has '
                'no `distill_weight` attribute (use it with a distiller, '
                'e.g. DAMOYOLODistiller)')
        self.span_iters = self._resolve_span(runner)
        runner.logger.info(
            f'DistillWeightHook: distillation weight decays from '
            f'{self.start_weight} to {self.end_weight} (cosine) over '
            f'{self.span_iters} iterations (training: {runner.max_iters} '
            f'iterations), starting at iteration {runner.iter}: '
            f'{self.weight_at(runner.iter):.6f}')

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        weight = self.weight_at(runner.iter)
        _unwrap(runner.model).distill_weight = weight
        runner.message_hub.update_scalar('train/distill_weight', weight)


@HOOKS.register_module()
class DistillGradClipHook(Hook):
    """Clip the gradient norm of one sub-module (the student) before every
    optimizer step.

    DAMO-YOLO clips the gradients of the student detector only (total L2
    norm 30) when it trains with a teacher; the align convolutions of the
    distillation loss are stepped unclipped. ``optim_wrapper.clip_grad``
    would clip every parameter of the optimizer, so this hook registers an
    optimizer step pre-hook instead. It runs after the backward pass and
    after the AMP loss scaler has unscaled the gradients (and only when the
    optimizer really steps, e.g. once per gradient-accumulation cycle); it
    works the same with a distributed model wrapper. The total norm before
    clipping is logged as ``train/student_grad_norm``; with a distiller that
    balances the gradients (``balance``), the smallest per-level factor the
    distillation gradient was scaled by as ``train/distill_grad_scale``.

    Args:
        max_norm (float): Maximum total norm. Defaults to 30.
        norm_type (float): Norm type. Defaults to 2.
        module (str): Attribute of the (unwrapped) model whose parameters
            are clipped. Defaults to ``'student'``.
    """

    priority = 'NORMAL'

    def __init__(self,
                 max_norm: float = 30.,
                 norm_type: float = 2.,
                 module: str = 'student') -> None:
        if not max_norm > 0:
            raise ValueError(
                f'DistillGradClipHook: max_norm must be > 0, got {max_norm}')
        self.max_norm = float(max_norm)
        self.norm_type = float(norm_type)
        self.module = module
        self._handle = None
        self.last_norm: Optional[float] = None

    def before_train(self, runner) -> None:
        model = _unwrap(runner.model)
        target = getattr(model, self.module, None)
        if not isinstance(target, nn.Module):
            raise AttributeError(
                f'DistillGradClipHook: the model {type(model).__name__} has '
                f'no sub-module `{self.module}` to clip')
        optim_wrapper = runner.optim_wrapper
        if not isinstance(optim_wrapper, OptimWrapper):
            raise TypeError(
                'DistillGradClipHook needs a single OptimWrapper, got '
                f'{type(optim_wrapper).__name__}')
        if optim_wrapper.clip_grad_kwargs:
            runner.logger.warning(
                'DistillGradClipHook: optim_wrapper.clip_grad '
                f'{optim_wrapper.clip_grad_kwargs} clips all parameters '
                f'before this hook clips `{self.module}`; DAMO-YOLO clips '
                'the student only')
        params = [p for p in target.parameters() if p.requires_grad]
        message_hub = runner.message_hub

        def clip(optimizer, args, kwargs):
            grads = [p for p in params if p.grad is not None]
            if not grads:
                return None
            norm = nn.utils.clip_grad_norm_(
                grads, max_norm=self.max_norm, norm_type=self.norm_type)
            self.last_norm = float(norm)
            message_hub.update_scalar('train/student_grad_norm',
                                      self.last_norm)
            scales = getattr(model, 'balance_scales', list)()
            if scales:
                # the distiller's gradient balance of this backward pass
                message_hub.update_scalar('train/distill_grad_scale',
                                          min(scales))
            return None

        self._handle = optim_wrapper.optimizer.register_step_pre_hook(clip)
        runner.logger.info(
            f'DistillGradClipHook: clipping the gradients of `{self.module}` '
            f'({len(params)} tensors) to {self.norm_type}-norm '
            f'{self.max_norm} before each optimizer step')

    def after_train(self, runner) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
