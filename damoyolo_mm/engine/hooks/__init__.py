from .atomic_checkpoint_hook import AtomicCheckpointHook, AtomicLocalBackend
from .class_count_check_hook import (ClassCountCheckHook,
                                     ClassCountMismatchError)
from .distill_gradient_hook import DistillGradientHook  # noqa: F401
from .distill_weight_hook import DistillGradClipHook, DistillWeightHook  # noqa: F401,E501
from .finite_loss_hook import CheckFiniteLossHook, NonFiniteLossError
from .memory_format_hook import MemoryFormatHook
from .official_checkpoint_hook import OfficialCheckpointHook
from .sada_progress_hook import SADAProgressHook, find_sada_transforms
from .torch_threads_hook import TorchThreadsHook

__all__ = [
    'AtomicCheckpointHook', 'AtomicLocalBackend', 'ClassCountCheckHook',
    'ClassCountMismatchError',
    'CheckFiniteLossHook', 'NonFiniteLossError', 'MemoryFormatHook',
    'SADAProgressHook', 'find_sada_transforms', 'TorchThreadsHook',
    'OfficialCheckpointHook'
]
