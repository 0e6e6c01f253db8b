"""SyncBatchNorm for CPU processes (gloo).

torch 2.13's ``nn.SyncBatchNorm`` refuses CPU tensors ("SyncBatchNorm
expected input tensor to be on GPU ...": its kernels ``batch_norm_stats`` /
``batch_norm_gather_stats_with_counts`` exist for CUDA only, and DDP refuses
SyncBatchNorm layers in a CPU model), and mmcv 2.1.0's ``SyncBatchNorm`` is
CUDA-only too.

:class:`CPUSyncBatchNorm` computes the same batch statistics over all
processes with two differentiable all-reduces (sum and count, then the
centred sum of squares), so forward, backward and running statistics equal
those of plain BatchNorm on the concatenated batch; in eval mode or with one
process it is plain BatchNorm. Its parameters and buffers have BatchNorm's
names, so checkpoints load into either.
:class:`~damoyolo_mm.engine.ddp.DAMOYOLODistributedDataParallel` converts
a model's BatchNorms with :func:`convert_cpu_sync_batchnorm` in CPU runs.
"""
from typing import Optional

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ['CPUSyncBatchNorm', 'convert_cpu_sync_batchnorm']


class _AllReduceSum(torch.autograd.Function):
    """Sum over the processes; the gradient is summed the same way (each
    process' statistics feed the loss of every process)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, group) -> torch.Tensor:
        ctx.group = group
        tensor = tensor.clone()
        dist.all_reduce(tensor, group=group)
        return tensor

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


class CPUSyncBatchNorm(_BatchNorm):
    """BatchNorm (any number of dims, like ``nn.SyncBatchNorm``) whose batch
    statistics are synchronised over the processes in training.

    Not a subclass of ``nn.SyncBatchNorm``: DDP refuses those on CPU.

    Args:
        num_features, eps, momentum, affine, track_running_stats: as for
            ``nn.BatchNorm2d``.
        process_group (optional): Processes to synchronise over; all when
            None.
    """

    def __init__(self,
                 num_features: int,
                 eps: float = 1e-5,
                 momentum: Optional[float] = 0.1,
                 affine: bool = True,
                 track_running_stats: bool = True,
                 process_group=None) -> None:
        super().__init__(num_features, eps, momentum, affine,
                         track_running_stats)
        self.process_group = process_group

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(
                f'expected at least 2D input (got {input.dim()}D input)')

    def _cpu_sync(self, input: torch.Tensor) -> bool:
        if not self.training:
            return False
        if not (dist.is_available() and dist.is_initialized()):
            return False
        group = self.process_group or dist.group.WORLD
        return dist.get_world_size(group) > 1

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self._cpu_sync(input):
            return super().forward(input)
        self._check_input_dim(input)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
        group = self.process_group or dist.group.WORLD
        channels = input.shape[1]
        dims = [0] + list(range(2, input.dim()))
        shape = [1, channels] + [1] * (input.dim() - 2)
        x = input.float()
        count = x.new_tensor([x.numel() // channels])
        # [sum per channel, count] over all processes (differentiable)
        total = _AllReduceSum.apply(torch.cat([x.sum(dims), count]), group)
        num = total[channels]
        mean = total[:channels] / num
        centred = x - mean.view(shape)
        var = _AllReduceSum.apply((centred * centred).sum(dims), group) / num
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.weight is not None:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                n = float(num)
                unbiased = var * (n / max(n - 1.0, 1.0))
                self.running_mean.mul_(1 - momentum).add_(
                    mean.detach() * momentum)
                self.running_var.mul_(1 - momentum).add_(
                    unbiased.detach() * momentum)
        return out.to(input.dtype)


def convert_cpu_sync_batchnorm(module: nn.Module,
                               process_group=None) -> nn.Module:
    """Replace every BatchNorm of ``module`` by :class:`CPUSyncBatchNorm`
    (weights, buffers and mode kept); returns the converted module."""
    out = module
    if isinstance(module, _BatchNorm) and \
            not isinstance(module, CPUSyncBatchNorm):
        out = CPUSyncBatchNorm(module.num_features, module.eps,
                               module.momentum, module.affine,
                               module.track_running_stats, process_group)
        if module.affine:
            with torch.no_grad():
                out.weight = module.weight
                out.bias = module.bias
        out.running_mean = module.running_mean
        out.running_var = module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.training = module.training
        if hasattr(module, 'qconfig'):
            out.qconfig = module.qconfig
    for name, child in module.named_children():
        out.add_module(name, convert_cpu_sync_batchnorm(child, process_group))
    return out
