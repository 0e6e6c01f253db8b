from . import hooks  # noqa: F401
from .cpu_sync_bn import CPUSyncBatchNorm, convert_cpu_sync_batchnorm
from .ddp import DAMOYOLODistributedDataParallel
from .distributed import default_backend, setup_distributed
from .ema import DAMOYOLOEMA

__all__ = [
    'DAMOYOLOEMA', 'DAMOYOLODistributedDataParallel', 'CPUSyncBatchNorm',
    'convert_cpu_sync_batchnorm', 'default_backend', 'setup_distributed'
]
