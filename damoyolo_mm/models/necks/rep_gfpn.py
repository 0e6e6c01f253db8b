"""RepGFPN: the efficient generalised FPN neck of DAMO-YOLO."""
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor

from ..layers import DEFAULT_NORM_CFG, RepGFPNCSPStage, build_downsample


@MODELS.register_module()
class RepGFPN(BaseModule):
    """RepGFPN neck (``GiraffeNeckV2`` of DAMO-YOLO), for ``L >= 3`` levels.

    Inputs ``x_0..x_{L-1}`` (finest first, each level half the size of the
    previous). Every fusion node is a :class:`RepGFPNCSPStage` fed with the
    concatenation of its inputs (same level first, then the finer level
    downsampled by a 3x3 stride-2 conv, then the coarser level upsampled
    with nearest x2):

    * top-down, ``t_{L-1} = node(x_{L-1}, down(x_{L-2}))``,
      ``t_i = node(x_i, down(x_{i-1}), up(t_{i+1}))`` for ``0 < i < L-1``,
      ``t_0 = node(x_0, up(t_1))``; ``t_i`` has ``in_channels[i]`` channels
      except ``t_0`` (``out_channels[0]``).
    * bottom-up, ``b_0 = t_0``, ``b_i = node(t_i, down(b_{i-1}))`` for
      ``0 < i < L-1``, ``b_{L-1} = node(t_{L-1}, down(t_{L-2}),
      down(b_{L-2}))``; ``b_i`` has ``out_channels[i]`` channels.

    Outputs ``(b_0, .., b_{L-1})``. With ``L = 3`` this is exactly the
    official 3-level graph; for ``L > 3`` the middle levels follow the same
    pattern (no further cross-level skips).

    Modules: ``td_downsamples[i]`` (on ``x_i``, ``i < L-1``),
    ``td_blocks[i]`` (``t_i``), ``bu_downsamples[i]`` (on ``b_i``),
    ``bu_blocks[i]`` (``b_{i+1}``), ``bu_skip_downsample`` (on
    ``t_{L-2}``).

    Args:
        in_channels (Sequence[int]): Channels of the input levels.
        out_channels (Sequence[int]): Channels of the output levels.
        depth (float): Blocks per node = ``round(3 * depth)`` (Python
            banker's rounding: 1.5 -> 4, 0.5 -> 2).
        hidden_ratio (float): Hidden width ratio of the rep blocks.
        block_type (str): ``'rep'`` (RepConv basic block, plain 3x3
            downsamples) or ``'mobile'`` (inverted-residual block,
            depthwise-separable downsamples), the nano setting.
        norm_cfg (dict): Norm config.
        act_cfg (dict): Activation config.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: Sequence[int],
                 depth: float = 1.0,
                 hidden_ratio: float = 1.0,
                 block_type: str = 'rep',
                 norm_cfg: ConfigType = DEFAULT_NORM_CFG,
                 act_cfg: ConfigType = dict(type='ReLU', inplace=True),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        in_channels, out_channels = list(in_channels), list(out_channels)
        if len(in_channels) < 3 or len(out_channels) != len(in_channels):
            raise ValueError(
                'RepGFPN needs >= 3 levels and as many out_channels as '
                f'in_channels, got in_channels {in_channels} and '
                f'out_channels {out_channels}')
        if block_type not in ('rep', 'mobile'):
            raise ValueError("RepGFPN: block_type must be 'rep' or "
                             f"'mobile', got {block_type!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_levels = n = len(in_channels)
        self.num_blocks = round(3 * depth)
        if self.num_blocks < 1:
            raise ValueError(f'RepGFPN: depth {depth} gives '
                             f'round(3 * depth) = {self.num_blocks} blocks')
        dw = block_type == 'mobile'
        c, o = in_channels, out_channels

        def node(cin, cout):
            return RepGFPNCSPStage(cin, cout, self.num_blocks, hidden_ratio,
                                   block_type, norm_cfg, act_cfg)

        def down(ch):
            return build_downsample(ch, dw, norm_cfg, act_cfg)

        self.td_downsamples = nn.ModuleList(down(c[i]) for i in range(n - 1))
        td_blocks = []
        for i in range(n):
            if i == 0:
                td_blocks.append(node(c[0] + c[1], o[0]))
            elif i == n - 1:
                td_blocks.append(node(c[i] + c[i - 1], c[i]))
            else:
                td_blocks.append(node(c[i] + c[i - 1] + c[i + 1], c[i]))
        self.td_blocks = nn.ModuleList(td_blocks)
        self.bu_downsamples = nn.ModuleList(down(o[i]) for i in range(n - 1))
        bu_blocks = []
        for i in range(1, n):
            if i < n - 1:
                bu_blocks.append(node(c[i] + o[i - 1], o[i]))
            else:
                bu_blocks.append(node(c[i] + c[i - 1] + o[i - 1], o[i]))
        self.bu_blocks = nn.ModuleList(bu_blocks)
        self.bu_skip_downsample = down(c[n - 2])

    def _check_inputs(self, inputs: Sequence[Tensor]) -> None:
        actual = [int(x.shape[1]) for x in inputs]
        if actual != self.in_channels:
            raise ValueError(
                f'RepGFPN: expected in_channels {self.in_channels}, got '
                f'features with channels {actual}')

    @staticmethod
    def _up(x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=2, mode='nearest')

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        self._check_inputs(inputs)
        x, n = list(inputs), self.num_levels
        td: List[Tensor] = [None] * n
        td[n - 1] = self.td_blocks[n - 1](torch.cat(
            [x[n - 1], self.td_downsamples[n - 2](x[n - 2])], 1))
        for i in range(n - 2, 0, -1):
            td[i] = self.td_blocks[i](torch.cat([
                x[i], self.td_downsamples[i - 1](x[i - 1]),
                self._up(td[i + 1])
            ], 1))
        td[0] = self.td_blocks[0](torch.cat([x[0], self._up(td[1])], 1))
        outs = [td[0]]
        for i in range(1, n):
            feats = [td[i]]
            if i == n - 1:
                feats.append(self.bu_skip_downsample(td[n - 2]))
            feats.append(self.bu_downsamples[i - 1](outs[i - 1]))
            outs.append(self.bu_blocks[i - 1](torch.cat(feats, 1)))
        return tuple(outs)
