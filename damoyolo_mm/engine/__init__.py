from . import hooks  # noqa: F401
from .cpu_sync_bn import (CPUDistributedDataParallel, CPUSyncBatchNorm,
                          convert_cpu_sync_batchnorm)
from .distributed import default_backend, setup_distributed
from .ema import DAMOYOLOEMA

__all__ = [
    'DAMOYOLOEMA', 'CPUDistributedDataParallel', 'CPUSyncBatchNorm',
    'convert_cpu_sync_batchnorm', 'default_backend', 'setup_distributed'
]
