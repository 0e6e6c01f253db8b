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
* on CPU (gloo) with the pytorch launcher, the process group is initialised
  here from torchrun's environment (the runner then finds it initialised),
  and the model is wrapped by
  :class:`~damoyolo_mm.engine.cpu_sync_bn.CPUDistributedDataParallel`
  (``sync_bn='torch'`` in the config: BatchNorms synchronised across the
  processes with :class:`~damoyolo_mm.engine.cpu_sync_bn.CPUSyncBatchNorm`);
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
    if backend == 'nccl':
        return  # mmengine's GPU path as is

    # CPU processes: SyncBN and DDP of CPUDistributedDataParallel (torch's
    # SyncBatchNorm and mmengine's DDP defaults need GPUs, see cpu_sync_bn)
    sync_bn = cfg.get('sync_bn', None)
    if sync_bn not in (None, 'torch'):
        raise ValueError(
            f'sync_bn={sync_bn!r} with the {backend!r} backend: only '
            "sync_bn='torch' (or None) is supported on CPU processes")
    wrapper = cfg.get('model_wrapper_cfg', None)
    if wrapper is None:
        wrapper = dict(
            type='CPUDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    if wrapper.get('type') == 'CPUDistributedDataParallel':
        wrapper.setdefault('sync_bn', sync_bn is not None)
    else:
        wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    cfg.sync_bn = None  # converted by the wrapper, not by mmengine
    if torch.cuda.is_available():
        return  # gloo between GPU processes: mmengine initialises it
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
