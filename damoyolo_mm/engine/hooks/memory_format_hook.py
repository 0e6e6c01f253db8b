"""Put the model into a given memory format (channels-last) for a run."""
import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch.nn.parallel import DistributedDataParallel

_FORMATS = {
    'channels_last': torch.channels_last,
    'contiguous': torch.contiguous_format,
}


@HOOKS.register_module()
class MemoryFormatHook(Hook):
    """Convert the model's parameters and buffers to ``memory_format``.

    On CPU the backward pass of depthwise convolutions (the 5x5 depthwise
    convolutions of the Nano backbones and necks) is more than ten times
    faster in channels-last layout than in the default NCHW layout; the
    activations follow the weights' layout, so the inputs need no change.
    The conversion happens in ``before_run`` with a very high priority, so
    copies made by other hooks (``EMAHook``) share the layout. Checkpoints
    store the same values in either layout. In distributed runs the
    weights must be converted before DDP wraps the model:
    ``damoyolo_mm.engine.setup_distributed`` (tools/train.py) has
    :class:`~damoyolo_mm.engine.ddp.DAMOYOLODistributedDataParallel` do it,
    and this hook refuses a DDP-wrapped model in another layout.

    Args:
        memory_format (str): 'channels_last' (default) or 'contiguous'.
    """

    priority = 'VERY_HIGH'

    def __init__(self, memory_format: str = 'channels_last') -> None:
        if memory_format not in _FORMATS:
            raise ValueError(f'memory_format must be one of '
                             f'{sorted(_FORMATS)}, got {memory_format!r}')
        self.memory_format = memory_format

    def before_run(self, runner) -> None:
        """Convert the (unwrapped) model once, before anything copies it."""
        model = runner.model
        fmt = _FORMATS[self.memory_format]
        if isinstance(model, DistributedDataParallel) and any(
                p.dim() == 4 and not p.is_contiguous(memory_format=fmt)
                for p in model.module.parameters()):
            # DDP's gradient buckets follow the layout the weights had when
            # it was built: converting now permutes the all-reduced
            # gradients of every dense k x k convolution (torch 2.13)
            raise RuntimeError(
                f'MemoryFormatHook: the model was wrapped by '
                f'{type(model).__name__} before its weights were put into '
                f'{self.memory_format}; converting now would corrupt the '
                'gradients. Set model_wrapper_cfg=dict(type='
                f"'DAMOYOLODistributedDataParallel', memory_format="
                f"'{self.memory_format}') (tools/train.py does)")
        if is_model_wrapper(model):
            model = model.module
        model.to(memory_format=fmt)
