"""Log how the distillation gradient compares with the detection gradient."""
from typing import Optional, Union

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

DATA_BATCH = Optional[Union[dict, tuple, list]]
PARTS = ('backbone', 'neck', 'head')


@HOOKS.register_module()
class DistillGradientHook(Hook):
    """Every ``interval`` training iterations, measure the detection and the
    distillation gradients of the student separately (on the iteration's
    batch, before the optimizer step) and log them: ``grad_det_<part>``,
    ``grad_dis_<part>`` (L2 norms), ``grad_cos_<part>`` for part in
    backbone, neck, head, ``grad_ratio_feat`` / ``grad_ratio_pred``
    (largest per-level ratio of distillation to detection gradient norm on
    the neck / head outputs, as trained) and ``grad_ratio_feat_raw`` /
    ``grad_ratio_pred_raw`` (before the distiller's ``balance``).

    It costs one extra forward and backward pass per measured iteration; the
    student's buffers (BatchNorm statistics) are restored afterwards, so the
    training itself is unchanged. ``records`` keeps every measurement.

    Args:
        interval (int): Measure every ``interval`` iterations. Defaults to 1.
    """

    priority = 'LOW'  # after DistillWeightHook has set the weight

    def __init__(self, interval: int = 1) -> None:
        if not isinstance(interval, int) or interval < 1:
            raise ValueError('DistillGradientHook: interval must be an '
                             f'integer >= 1, got {interval!r}')
        self.interval = interval
        self.records = []

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        if not self.every_n_train_iters(runner, self.interval):
            return
        from damoyolo_mm.models.distillers import distill_gradient_stats
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not hasattr(model, 'distill_loss'):
            raise AttributeError(
                f'DistillGradientHook: the model {type(model).__name__} is '
                'not a distiller (use it with DAMOYOLODistiller)')
        buffers = {k: v.clone() for k, v in model.student.named_buffers()}
        rng = torch.get_rng_state()
        data = model.data_preprocessor(data_batch, True)
        stats = distill_gradient_stats(model, data['inputs'],
                                       data['data_samples'])
        torch.set_rng_state(rng)
        with torch.no_grad():
            for k, v in model.student.named_buffers():
                v.copy_(buffers[k])
        stats['iter'] = runner.iter
        stats['distill_weight'] = float(model.distill_weight)
        self.records.append(stats)
        for key, value in stats.items():
            if key in ('iter', 'distill_weight'):
                continue
            runner.message_hub.update_scalar(f'train/grad_{key}', value)


class _Measured(Exception):
    """Raised by :class:`_StopAfter` to end a measuring run early."""


class _StopAfter(Hook):
    priority = 'LOWEST'

    def __init__(self, iters: int) -> None:
        self.iters = iters

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if runner.iter + 1 >= self.iters:
            raise _Measured()


def measure_distill_gradients(cfg, iters: int, interval: int = 1) -> list:
    """Train a distillation config (an mmengine ``Config`` with its
    ``work_dir`` and ``model.teacher_ckpt`` set) for its first ``iters``
    iterations, unchanged (schedules, weight decay of the distillation term,
    clipping as in the full run), and return the
    :class:`DistillGradientHook` records (one dict per measured iteration).
    """
    from mmengine.runner import Runner
    if not isinstance(iters, int) or iters < 1:
        raise ValueError(f'measure_distill_gradients: iters must be an '
                         f'integer >= 1, got {iters!r}')
    cfg = cfg.copy()
    cfg.default_hooks.checkpoint = None
    runner = Runner.from_cfg(cfg)
    hook = DistillGradientHook(interval=interval)
    runner.register_hook(hook)
    runner.register_hook(_StopAfter(iters))
    try:
        runner.train()
    except _Measured:
        pass
    return hook.records
