"""Distributed launch settings that follow the device.

mmengine 0.10.7 assumes GPUs for a distributed run: ``env_cfg.dist_cfg``
defaults to ``backend='nccl'``, its pytorch launcher calls
``torch.cuda.set_device`` (which fails on a CPU build of torch) and its
DistributedDataParallel wrapper is given ``device_ids=[LOCAL_RANK]`` (which
DDP refuses for a CPU model). :func:`setup_distributed` fills these in per
config, before the runner is built, so that the same config trains with
``torchrun`` on GPUs (nccl) and on CPUs (gloo):

* no ``env_cfg.dist_cfg.backend`` in the config: ``nccl`` when CUDA GPUs are
  visible, ``gloo`` otherwise; a backend in the config is kept;
* the model is wrapped by
  :class:`~damoyolo_mm.engine.ddp.DAMOYOLODistributedDataParallel`, which
  puts the weights into the layout of the config's ``MemoryFormatHook``
  before DDP is built and, on CPUs, replaces the BatchNorms by
  :class:`~damoyolo_mm.engine.cpu_sync_bn.CPUSyncBatchNorm`
  (``sync_bn='torch'``) and passes no device ids;
* on CPUs with the pytorch launcher the process group is initialised here
  from torchrun's environment (the runner then finds it initialised);
* impossible requests fail before any work with what to set: NCCL without
  a GPU, more processes per node than GPUs.

It only edits the given config and, on CPU, initialises the process group:
nothing of torch / mmengine is patched.
"""
import os
from datetime import timedelta
from typing import Optional

import torch
import torch.distributed as torch_dist
from mmengine.config import Config

__all__ = ['default_backend', 'check_backend', 'setup_distributed']


def default_backend() -> str:
    """``'nccl'`` when CUDA GPUs are visible, ``'gloo'`` otherwise."""
    return 'nccl' if torch.cuda.is_available() else 'gloo'


def check_backend(backend: str, nproc_per_node: Optional[int],
                  where: str = 'env_cfg.dist_cfg.backend') -> None:
    """Refuse a backend the machine cannot run, saying what to set.

    Args:
        backend (str): The requested backend.
        nproc_per_node (int, optional): Processes started on this node
            (``LOCAL_WORLD_SIZE`` under torchrun).
        where (str): Where the backend came from, for the message.
    """
    if backend != 'nccl':
        return
    num_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if num_gpus == 0:
        raise RuntimeError(
            f"{where}='nccl' needs CUDA GPUs, but this machine has none "
            '(torch.cuda.is_available() is False): set '
            "`--cfg-options env_cfg.dist_cfg.backend=gloo` to train on CPUs, "
            'or leave the backend out of the config to pick it from the '
            'device')
    if nproc_per_node is not None and nproc_per_node > num_gpus:
        raise RuntimeError(
            f'{nproc_per_node} processes per node requested but only '
            f'{num_gpus} CUDA GPU(s) are visible on this node (nccl: one '
            f'process per GPU): set GPUS (torchrun --nproc-per-node) to at '
            f'most {num_gpus}, or CUDA_VISIBLE_DEVICES to more GPUs')


def _env_int(name: str) -> Optional[int]:
    value = os.environ.get(name)
    return None if value in (None, '') else int(value)


def _hook_memory_format(cfg: Config) -> Optional[str]:
    for hook in cfg.get('custom_hooks', None) or []:
        if str(hook.get('type', '')).split('.')[-1] == 'MemoryFormatHook':
            return hook.get('memory_format', 'channels_last')
    return None


def setup_distributed(cfg: Config, launcher: str) -> None:
    """Fill in the distributed settings of ``cfg`` for this machine.

    Call it before building the runner. No-op for ``launcher='none'``.

    Args:
        cfg (Config): The full config; ``env_cfg`` and
            ``model_wrapper_cfg`` are edited in place.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
    """
    if launcher == 'none':
        return
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    if dist_cfg.get('backend') is None:
        dist_cfg['backend'] = default_backend()
        where = 'the backend picked for this machine'
    else:
        where = 'env_cfg.dist_cfg.backend'
    backend = dist_cfg['backend']
    check_backend(backend, _env_int('LOCAL_WORLD_SIZE'), where)
    cpu = not torch.cuda.is_available()
    sync_bn = cfg.get('sync_bn', None)
    wrapper = cfg.get('model_wrapper_cfg', None)
    if wrapper is None:
        wrapper = dict(
            type='DAMOYOLODistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    if wrapper.get('type') == 'DAMOYOLODistributedDataParallel':
        # the weights' layout before DDP builds its buckets (see ddp.py)
        memory_format = _hook_memory_format(cfg)
        if memory_format is not None:
            wrapper.setdefault('memory_format', memory_format)
        if cpu and sync_bn is not None:
            if sync_bn != 'torch':
                raise ValueError(
                    f'sync_bn={sync_bn!r} on a machine without GPUs: only '
                    "sync_bn='torch' (or None) is supported on CPUs")
            wrapper.setdefault('cpu_sync_bn', True)
            cfg.sync_bn = None  # converted by the wrapper, not by mmengine
    elif cpu:
        if sync_bn is not None:
            raise ValueError(
                f'sync_bn={sync_bn!r} with model_wrapper_cfg type '
                f'{wrapper.get("type")!r} on a machine without GPUs: torch\'s '
                'SyncBatchNorm needs GPUs; use model_wrapper_cfg type '
                "'DAMOYOLODistributedDataParallel' or set sync_bn=None")
        wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if not cpu:
        return  # GPU processes: mmengine initialises the process group
    if launcher != 'pytorch':
        raise RuntimeError(
            f'--launcher {launcher} on a machine without GPUs: CPU '
            'processes are started with torchrun (--launcher pytorch, '
            'tools/dist_train.sh); the slurm and mpi launchers of mmengine '
            'expect one GPU per process')
    if not torch_dist.is_initialized():
        missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR',
                               'MASTER_PORT') if k not in os.environ]
        if missing:
            raise RuntimeError(
                f'--launcher pytorch but {missing} not set in the '
                'environment: start the processes with torchrun (e.g. '
                'bash tools/dist_train.sh CONFIG 2)')
        kwargs = {k: v for k, v in dist_cfg.items() if k != 'backend'}
        if 'timeout' in kwargs and not isinstance(kwargs['timeout'],
                                                  timedelta):
            kwargs['timeout'] = timedelta(seconds=kwargs['timeout'])
        torch_dist.init_process_group(backend=backend, **kwargs)
