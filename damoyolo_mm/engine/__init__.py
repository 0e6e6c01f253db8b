from . import hooks  # noqa: F401
from .cpu_sync_bn import CPUSyncBatchNorm, convert_cpu_sync_batchnorm
from .ddp import DAMOYOLODistributedDataParallel
from .distributed import default_backend, setup_distributed
from .ema import DAMOYOLOEMA
from .runner import DAMOYOLORunner
from .work_dir_lock import WorkDirLock, WorkDirLockedError

__all__ = [
    'DAMOYOLOEMA', 'DAMOYOLODistributedDataParallel', 'CPUSyncBatchNorm',
    'convert_cpu_sync_batchnorm', 'default_backend', 'setup_distributed',
    'DAMOYOLORunner', 'WorkDirLock', 'WorkDirLockedError'
]
