"""Building blocks of the DAMO-YOLO backbones and neck."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import (ConvModule, DepthwiseSeparableConvModule,
                      build_activation_layer)
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor

from .rep_conv import RepConv
from .utils import DEFAULT_NORM_CFG, expanded_channels


def _act(act_cfg: OptConfigType) -> nn.Module:
    return (build_activation_layer(act_cfg)
            if act_cfg is not None else nn.Identity())


@MODELS.register_module()
class DAMOFocus(BaseModule):
    """Space-to-depth (2x2 pixels -> 4x channels) followed by a ConvModule.

    The four sub-grids are concatenated in the order (even row, even col),
    (odd row, even col), (even row, odd col), (odd row, odd col).

    Args:
        in_channels (int): Input channels (before space-to-depth).
        out_channels (int): Output channels.
        kernel_size (int): Kernel of the convolution (stride 1, same pad).
        norm_cfg (dict): Norm config.
        act_cfg (dict, optional): Activation config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int = 1,
                 norm_cfg: ConfigType = DEFAULT_NORM_CFG,
                 act_cfg: OptConfigType = dict(type='SiLU', inplace=True),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.conv = ConvModule(
            in_channels * 4, out_channels, kernel_size, stride=1,
            padding=(kernel_size - 1) // 2, norm_cfg=norm_cfg,
            act_cfg=act_cfg)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.cat((x[..., ::2, ::2], x[..., 1::2, ::2],
                       x[..., ::2, 1::2], x[..., 1::2, 1::2]), dim=1)
        return self.conv(x)


@MODELS.register_module()
class DAMOSPPBottleneck(BaseModule):
    """SPP: 1x1 conv to half width, max-pools (stride 1) of several sizes
    concatenated with their input, 1x1 conv to ``out_channels``.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_sizes (tuple[int]): Max-pool sizes.
        norm_cfg (dict): Norm config.
        act_cfg (dict, optional): Activation of both convs.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_sizes=(5, 9, 13),
                 norm_cfg: ConfigType = DEFAULT_NORM_CFG,
                 act_cfg: OptConfigType = dict(type='SiLU', inplace=True),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        mid = in_channels // 2
        self.conv1 = ConvModule(
            in_channels, mid, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.poolings = nn.ModuleList(
            nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)
            for k in kernel_sizes)
        self.conv2 = ConvModule(
            mid * (len(kernel_sizes) + 1), out_channels, 1,
            norm_cfg=norm_cfg, act_cfg=act_cfg)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        x = torch.cat([x] + [pool(x) for pool in self.poolings], dim=1)
        return self.conv2(x)


@MODELS.register_module()
class TinyNASResBlock(BaseModule):
    """Bottleneck residual block of the TinyNAS backbones.

    ``conv1`` (1x1 for ``'k1kx'``, kxk for ``'kxkx'``; BN + act) to
    ``mid_channels``, then ``conv2`` (kxk, stride; BN, no act; a
    :class:`RepConv` when ``reparam``), plus the input when ``stride != 2``
    (through a 1x1 conv + BN when the widths differ), then the activation.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        mid_channels (int): Bottleneck channels (``btn`` of the spec).
        kernel_size (int): Kernel of the kxk convs.
        stride (int): Stride of ``conv2``.
        block_type (str): ``'k1kx'`` or ``'kxkx'``.
        reparam (bool): Use :class:`RepConv` for ``conv2``.
        norm_cfg (dict): Norm config.
        act_cfg (dict, optional): Activation config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 mid_channels: int,
                 kernel_size: int = 3,
                 stride: int = 1,
                 block_type: str = 'k1kx',
                 reparam: bool = False,
                 norm_cfg: ConfigType = DEFAULT_NORM_CFG,
                 act_cfg: OptConfigType = dict(type='ReLU', inplace=True),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if block_type not in ('k1kx', 'kxkx'):
            raise ValueError("TinyNASResBlock: block_type must be 'k1kx' or "
                             f"'kxkx', got {block_type!r}")
        k1 = 1 if block_type == 'k1kx' else kernel_size
        self.conv1 = ConvModule(
            in_channels, mid_channels, k1, padding=(k1 - 1) // 2,
            norm_cfg=norm_cfg, act_cfg=act_cfg)
        if reparam:
            self.conv2 = RepConv(
                mid_channels, out_channels, kernel_size, stride=stride,
                norm_cfg=norm_cfg, act_cfg=None)
        else:
            self.conv2 = ConvModule(
                mid_channels, out_channels, kernel_size, stride=stride,
                padding=(kernel_size - 1) // 2, norm_cfg=norm_cfg,
                act_cfg=None)
        self.with_residual = stride != 2
        if self.with_residual and in_channels != out_channels:
            self.shortcut_conv = ConvModule(
                in_channels, out_channels, 1, norm_cfg=norm_cfg,
                act_cfg=None)
        else:
            self.shortcut_conv = None
        self.act = _act(act_cfg)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(self.conv1(x))
        if self.with_residual:
            identity = x if self.shortcut_conv is None else \
                self.shortcut_conv(x)
            out = out + identity
        return self.act(out)


class HardSigmoidGate(nn.Module):
    """``relu6(x + 3) / 6``."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu6(x + 3.) / 6.


@MODELS.register_module()
class DAMOSELayer(BaseModule):
    """Squeeze-and-excitation with two bias-free linear layers (reduction 4,
    ReLU, hard-sigmoid gate), as in the nano backbone option ``use_se``."""

    def __init__(self, channels: int, reduction: int = 4,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.fc1 = nn.Linear(channels, channels // reduction, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(channels // reduction, channels, bias=False)
        self.gate = HardSigmoidGate()

    def forward(self, x: Tensor) -> Tensor:
        w = x.mean(dim=(2, 3))
        w = self.gate(self.fc2(self.relu(self.fc1(w))))
        return x * w[:, :, None, None]


@MODELS.register_module()
class MobileInvertedBlock(BaseModule):
    """Inverted residual block: 1x1 expand (BN, act) -> 5x5 depthwise
    (BN) -> optional SE -> act -> 1x1 project (BN, no act), plus the input
    when ``stride == 1`` and the widths agree.

    The expanded width is ``make_divisible(ceil(out_channels *
    expand_ratio), 8)`` (it follows the *output* width).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the depthwise conv.
        expand_ratio (float): Expansion ratio.
        dw_kernel_size (int): Kernel of the depthwise conv.
        use_se (bool): Insert :class:`DAMOSELayer` after the depthwise BN.
        depthwise (bool): Depthwise (grouped) kxk conv; ``False`` gives a
            dense kxk conv.
        norm_cfg (dict): Norm config.
        act_cfg (dict, optional): Activation config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 expand_ratio: float = 3.0,
                 dw_kernel_size: int = 5,
                 use_se: bool = False,
                 depthwise: bool = True,
                 norm_cfg: ConfigType = DEFAULT_NORM_CFG,
                 act_cfg: OptConfigType = dict(type='SiLU', inplace=True),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        mid = expanded_channels(out_channels, expand_ratio)
        self.mid_channels = mid
        self.expand = ConvModule(
            in_channels, mid, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.depthwise = ConvModule(
            mid, mid, dw_kernel_size, stride=stride,
            padding=(dw_kernel_size - 1) // 2,
            groups=mid if depthwise else 1,
            norm_cfg=norm_cfg, act_cfg=None)
        self.se = DAMOSELayer(mid) if use_se else None
        self.act = _act(act_cfg)
        self.project = ConvModule(
            mid, out_channels, 1, norm_cfg=norm_cfg, act_cfg=None)
        self.use_shortcut = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.depthwise(self.expand(x))
        if self.se is not None:
            out = self.se(out)
        out = self.project(self.act(out))
        return x + out if self.use_shortcut else out


@MODELS.register_module()
class RepGFPNBasicBlock(BaseModule):
    """Neck block: :class:`RepConv` (``in -> int(in * hidden_ratio)``,
    activated) then a 3x3 ConvModule back to ``out_channels``, plus the
    input (``in_channels == out_channels`` is required).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 hidden_ratio: float = 1.0,
                 shortcut: bool = True,
                 norm_cfg: ConfigType = DEFAULT_NORM_CFG,
                 act_cfg: OptConfigType = dict(type='ReLU', inplace=True),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if in_channels != out_channels:
            raise ValueError('RepGFPNBasicBlock needs in_channels == '
                             f'out_channels, got {in_channels} and '
                             f'{out_channels}')
        hidden = int(in_channels * hidden_ratio)
        self.rep_conv = RepConv(
            in_channels, hidden, 3, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv = ConvModule(
            hidden, out_channels, 3, padding=1, norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        self.shortcut = shortcut

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(self.rep_conv(x))
        return x + out if self.shortcut else out


@MODELS.register_module()
class RepGFPNCSPStage(BaseModule):
    """Fusion node of RepGFPN (ELAN-like CSP stage).

    ``short_conv`` (1x1 -> ``out // 2``) and ``main_conv`` (1x1 -> the rest)
    split the input; ``num_blocks`` blocks run in sequence on the main
    path and *every* block output is concatenated with the short path
    before ``final_conv`` (1x1 -> ``out_channels``).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        num_blocks (int): Number of blocks.
        hidden_ratio (float): Hidden width ratio of the rep blocks.
        block_type (str): ``'rep'`` (:class:`RepGFPNBasicBlock`) or
            ``'mobile'`` (:class:`MobileInvertedBlock`, expand 3, 5x5 dw).
        norm_cfg (dict): Norm config.
        act_cfg (dict, optional): Activation config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 num_blocks: int,
                 hidden_ratio: float = 1.0,
                 block_type: str = 'rep',
                 norm_cfg: ConfigType = DEFAULT_NORM_CFG,
                 act_cfg: OptConfigType = dict(type='ReLU', inplace=True),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if block_type not in ('rep', 'mobile'):
            raise ValueError("RepGFPNCSPStage: block_type must be 'rep' or "
                             f"'mobile', got {block_type!r}")
        if num_blocks < 1:
            raise ValueError(
                f'RepGFPNCSPStage: num_blocks must be >= 1, got {num_blocks}')
        short_ch = out_channels // 2
        main_ch = out_channels - short_ch
        self.short_conv = ConvModule(
            in_channels, short_ch, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.main_conv = ConvModule(
            in_channels, main_ch, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)
        blocks = []
        for _ in range(num_blocks):
            if block_type == 'rep':
                blocks.append(
                    RepGFPNBasicBlock(main_ch, main_ch, hidden_ratio,
                                      norm_cfg=norm_cfg, act_cfg=act_cfg))
            else:
                blocks.append(
                    MobileInvertedBlock(main_ch, main_ch, 1, 3.0, 5,
                                        norm_cfg=norm_cfg, act_cfg=act_cfg))
        self.blocks = nn.Sequential(*blocks)
        self.final_conv = ConvModule(
            short_ch + main_ch * num_blocks, out_channels, 1,
            norm_cfg=norm_cfg, act_cfg=act_cfg)

    def forward(self, x: Tensor) -> Tensor:
        outs = [self.short_conv(x)]
        y = self.main_conv(x)
        for block in self.blocks:
            y = block(y)
            outs.append(y)
        return self.final_conv(torch.cat(outs, dim=1))


def build_downsample(channels: int, depthwise: bool, norm_cfg: ConfigType,
                     act_cfg: OptConfigType) -> nn.Module:
    """3x3 stride-2 conv (BN, act) keeping the width; depthwise-separable
    (dw BN act, pw BN act) when ``depthwise``."""
    if depthwise:
        return DepthwiseSeparableConvModule(
            channels, channels, 3, stride=2, padding=1, norm_cfg=norm_cfg,
            act_cfg=act_cfg)
    return ConvModule(channels, channels, 3, stride=2, padding=1,
                      norm_cfg=norm_cfg, act_cfg=act_cfg)
