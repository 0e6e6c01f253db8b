"""DistributedDataParallel that prepares the model before DDP sees it.

DDP (torch 2.13) lays out its gradient buckets after the parameters' memory
format when it is constructed. A model put into channels-last afterwards
(``MemoryFormatHook`` runs in ``before_run``, after mmengine wrapped the
model) gets wrong gradients for every dense k x k convolution: the bucket
views keep the old strides, and the all-reduced gradients come back
permuted. Likewise SyncBN on CPU processes must replace the BatchNorms
before DDP registers the parameters, and DDP refuses ``device_ids`` for a
CPU model, which mmengine 0.10.7 always passes.

:class:`DAMOYOLODistributedDataParallel` does these steps in order, then
builds mmengine's wrapper. ``damoyolo_mm.engine.setup_distributed`` selects
it (memory format from the config's ``MemoryFormatHook``; the hook then
finds the weights in their layout and changes nothing).
"""
from typing import Optional

import torch
import torch.nn as nn
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS

from .cpu_sync_bn import convert_cpu_sync_batchnorm

__all__ = ['DAMOYOLODistributedDataParallel']

_FORMATS = {
    'channels_last': torch.channels_last,
    'contiguous': torch.contiguous_format,
}


# mmengine's root registry: Runner.wrap_model looks wrappers up there only
@MODEL_WRAPPERS.register_module()
class DAMOYOLODistributedDataParallel(MMDistributedDataParallel):
    """mmengine's DDP wrapper with the model prepared first.

    Args:
        module (nn.Module): The model, on its device.
        memory_format (str, optional): 'channels_last' or 'contiguous': the
            layout of the weights, set before DDP is built. None keeps it.
        cpu_sync_bn (bool): Replace the BatchNorms by
            :class:`~damoyolo_mm.engine.cpu_sync_bn.CPUSyncBatchNorm` (CPU
            processes; on GPUs mmengine's ``sync_bn='torch'`` does it).
            Defaults to False.
        device_ids (list, optional): As for DDP; ignored for a CPU model
            (mmengine passes ``[LOCAL_RANK]``).
        **kwargs: Passed to ``MMDistributedDataParallel``.
    """

    def __init__(self,
                 module: nn.Module,
                 memory_format: Optional[str] = None,
                 cpu_sync_bn: bool = False,
                 device_ids: Optional[list] = None,
                 **kwargs) -> None:
        if memory_format is not None:
            if memory_format not in _FORMATS:
                raise ValueError(
                    f'model_wrapper_cfg.memory_format must be one of '
                    f'{sorted(_FORMATS)}, got {memory_format!r}')
            module.to(memory_format=_FORMATS[memory_format])
        if cpu_sync_bn:
            module = convert_cpu_sync_batchnorm(module)
        param = next(module.parameters(), None)
        if param is None or param.device.type == 'cpu':
            device_ids = None
        super().__init__(module=module, device_ids=device_ids, **kwargs)
