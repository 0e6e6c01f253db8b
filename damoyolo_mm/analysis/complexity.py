"""Parameter and FLOP counts in the convention of the DAMO-YOLO paper.

The published numbers are measured on the *deploy* form (every RepConv
re-parameterised, BatchNorm kept) with one multiply-accumulate counted as
2 FLOPs, BatchNorm as 2 ops per element (x2 as well), activations, pooling
and nearest upsampling as free, over backbone + neck + head convolutions.
"""
import copy
from typing import Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import get_shape

IntPair = Union[int, Sequence[int]]


def _pair(size: IntPair) -> Tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def reparameterize(model: nn.Module) -> nn.Module:
    """Call ``switch_to_deploy`` of every sub-module that has one, except
    detectors (whose own switch also folds BatchNorm). In place."""
    from mmdet.models.detectors import BaseDetector
    for m in list(model.modules()):
        if hasattr(m, 'switch_to_deploy') and not isinstance(
                m, BaseDetector):
            m.switch_to_deploy()
    return model


class _RawForward(nn.Module):
    """Backbone -> neck -> head forward of a detector (no post-process)."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, x: torch.Tensor):
        return self.detector._forward(x)


def get_model_complexity(model: nn.Module,
                         input_size: IntPair = 640,
                         count_size: IntPair = None,
                         deploy: bool = True,
                         bn_ops_per_element: int = 2,
                         copy_model: bool = True) -> Tuple[int, float]:
    """Parameters and GFLOPs of a detector.

    Args:
        model: An mmdet single-stage detector (not modified; a copy is
            analysed).
        input_size: Input (h, w) the FLOPs are reported for.
        count_size: Size the graph is traced at; FLOPs are scaled by the
            area ratio (exact when both sizes are multiples of 32). Defaults
            to ``input_size``; a small size keeps the count fast.
        deploy: Re-parameterise RepConv layers first (BatchNorm is kept).
        bn_ops_per_element: Ops per BatchNorm output element (2 reproduces
            the published numbers, 4 the current ``thop``).
        copy_model: Work on a deep copy (``False`` re-parameterises and
            puts ``model`` itself in eval mode: faster for throwaway models).

    Returns:
        tuple: (number of parameters, GFLOPs).
    """
    h, w = _pair(input_size)
    ch, cw = _pair(count_size if count_size is not None else input_size)
    for name, v in (('input_size', (h, w)), ('count_size', (ch, cw))):
        if v[0] % 32 or v[1] % 32:
            raise ValueError(f'{name} must be multiples of 32, got {v}')
    if copy_model:
        model = copy.deepcopy(model)
    model = model.cpu().float().eval()
    if deploy:
        reparameterize(model)
    params = sum(p.numel() for p in model.parameters())

    def bn_handle(inputs, outputs):
        n = 1
        for d in get_shape(inputs[0]):
            n *= d
        return n * bn_ops_per_element

    x = torch.zeros(1, 3, ch, cw)
    analyzer = FlopAnalyzer(_RawForward(model), (x, ))
    analyzer.set_op_handle('aten::batch_norm', bn_handle)
    analyzer.set_op_handle('aten::upsample_nearest2d', None)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    with torch.no_grad():
        macs = analyzer.total()
    gflops = 2 * macs * (h * w) / (ch * cw) / 1e9
    return params, gflops
