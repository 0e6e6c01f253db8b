"""TinyNAS backbones of DAMO-YOLO, built from a structure spec.

* :class:`TinyNASRes` - residual bottleneck stages (DAMO-YOLO-T/S).
* :class:`TinyNASCSP` - the same blocks wrapped in CSP stages (M/L).
* :class:`TinyNASMob` - inverted-residual (mobile) stages (nano models).

All three take the structure spec of :mod:`.structure`, return the feature
maps of ``out_indices`` as a tuple and expose ``out_channels`` (one entry per
``out_indices``) so that any mmdet neck can consume them.
"""
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from ..layers import (DEFAULT_NORM_CFG, DAMOFocus, DAMOSPPBottleneck,
                      MobileInvertedBlock, TinyNASResBlock, expanded_channels)
from .structure import STAGE_CLASSES, StructureType, load_structure


def mobile_expand_ratio(stage_class: str, index: int) -> float:
    """Expansion ratio of the inverted-residual blocks of spec stage
    ``index`` (1 = first after the stem) in the nano backbones:
    ``3.5 + 0.5 * (index - 1)`` for ``SuperResConvK1KX``, 2.5 for
    ``SuperResConvKXKX`` stages."""
    if stage_class == 'SuperResConvK1KX':
        return 3.5 + (index - 1) * 0.5
    return 2.5


def mobile_mid_channels(out_channels: int, index: int,
                        stage_class: str = 'SuperResConvK1KX') -> int:
    """Expanded width of a nano inverted-residual block of spec stage
    ``index``."""
    return expanded_channels(out_channels,
                             mobile_expand_ratio(stage_class, index))


class TinyNASBase(BaseModule):
    """Shared logic: spec loading, stem, stage bookkeeping, forward,
    freezing.

    Subclasses fill ``self.layers`` (names of the modules run in order,
    ``'stem'`` first) and ``self.layer_out_channels``.
    """

    def __init__(self,
                 structure: StructureType,
                 out_indices: Sequence[int],
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        name = type(self).__name__
        source = (f'{name} structure {structure!r}' if isinstance(
            structure, str) else f'{name} inline structure')
        self.structure = load_structure(structure, source=source)
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.layers: List[str] = []
        self.layer_out_channels: List[int] = []

    def _check_out_indices(self) -> None:
        n = len(self.layers)
        for i in self.out_indices:
            if not 0 <= i < n:
                raise ValueError(
                    f'{type(self).__name__}: out_indices {self.out_indices} '
                    f'out of range, the structure gives {n} stages '
                    f'(0..{n - 1}, 0 = stem)')
        self.out_channels = [self.layer_out_channels[i]
                             for i in self.out_indices]

    def _add_stem(self, use_focus: bool, stride: int, norm_cfg: ConfigType,
                  act_cfg: OptConfigType) -> None:
        """``self.stem`` from spec stage 0: a Focus or a ``k``x``k`` conv
        with ``stride``."""
        stage = self.structure[0]
        if use_focus:
            self.stem = DAMOFocus(stage['in'], stage['out'], stage['k'],
                                  norm_cfg=norm_cfg, act_cfg=act_cfg)
        else:
            self.stem = ConvModule(
                stage['in'], stage['out'], stage['k'], stride=stride,
                padding=(stage['k'] - 1) // 2, norm_cfg=norm_cfg,
                act_cfg=act_cfg)
        self.layers.append('stem')
        self.layer_out_channels.append(stage['out'])

    def _add_block_stages(self, make_block: Callable[[int, dict, int],
                                                     nn.Module],
                          with_spp: bool, norm_cfg: ConfigType,
                          spp_act_cfg: OptConfigType) -> None:
        """One ``stage{i}`` per spec stage: ``L`` blocks
        ``make_block(i, stage, j)``, an SPP after the first block of the
        last stage with ``with_spp``."""
        stages = self.structure
        last = len(stages) - 1
        for idx, st in enumerate(stages[1:], start=1):
            blocks = []
            for b in range(st['L']):
                blocks.append(make_block(idx, st, b))
                if b == 0 and with_spp and idx == last:
                    blocks.append(
                        DAMOSPPBottleneck(st['out'], st['out'],
                                          norm_cfg=norm_cfg,
                                          act_cfg=spp_act_cfg))
            self.add_module(f'stage{idx}', nn.Sequential(*blocks))
            self.layers.append(f'stage{idx}')
            self.layer_out_channels.append(st['out'])
        self._check_out_indices()

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        outs = []
        for i, name in enumerate(self.layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _freeze_stages(self) -> None:
        for i in range(self.frozen_stages + 1):
            m = getattr(self, self.layers[i])
            m.eval()
            for param in m.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self


@MODELS.register_module()
class TinyNASRes(TinyNASBase):
    """Residual TinyNAS backbone (DAMO-YOLO-T/S).

    Stage ``i`` of the spec becomes ``stage{i}``: ``L`` :class:
    `TinyNASResBlock` (the first with the stage stride, ``k1kx`` or ``kxkx``
    from the stage class). With ``with_spp`` an SPP module follows the
    first block of the last stage. The stem is a Focus (space-to-depth +
    conv, stride 1 on the folded map) or a plain conv with the spec stride.

    Args:
        structure (str | list[dict]): Structure spec (see
            :mod:`damoyolo_mm.models.backbones.structure`).
        out_indices (Sequence[int]): Stages to output (0 = stem).
        use_focus (bool): Focus stem.
        with_spp (bool): SPP in the last stage.
        reparam (bool): :class:`RepConv` as second conv of every block.
        act_cfg (dict): Activation of the stem and blocks.
        spp_act_cfg (dict): Activation inside the SPP (SiLU in DAMO-YOLO,
            whatever ``act_cfg`` is).
        norm_cfg (dict): Norm config (BN eps 1e-3, momentum 0.03).
        frozen_stages (int): Freeze stages ``0..frozen_stages``.
        norm_eval (bool): Keep BN layers in eval mode while training.
    """

    def __init__(self,
                 structure: StructureType = 'tinynas_L20_k1kx',
                 out_indices: Sequence[int] = (2, 4, 5),
                 use_focus: bool = True,
                 with_spp: bool = True,
                 reparam: bool = True,
                 act_cfg: ConfigType = dict(type='ReLU', inplace=True),
                 spp_act_cfg: ConfigType = dict(type='SiLU', inplace=True),
                 norm_cfg: ConfigType = DEFAULT_NORM_CFG,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(structure, out_indices, frozen_stages, norm_eval,
                         init_cfg)
        stages = self.structure
        self._add_stem(use_focus, stages[0]['s'], norm_cfg, act_cfg)

        def block(idx: int, st: dict, b: int) -> nn.Module:
            return TinyNASResBlock(
                st['in'] if b == 0 else st['out'], st['out'], st['btn'],
                st['k'], st['s'] if b == 0 else 1,
                block_type=STAGE_CLASSES[st['class']], reparam=reparam,
                norm_cfg=norm_cfg, act_cfg=act_cfg)

        self._add_block_stages(block, with_spp, norm_cfg, spp_act_cfg)


@MODELS.register_module()
class TinyNASMob(TinyNASBase):
    """Mobile TinyNAS backbone of the DAMO-YOLO nano models.

    Like :class:`TinyNASRes` with :class:`MobileInvertedBlock` blocks
    (5x5 depthwise, expanded width from the block's output width). The
    expansion ratio of spec stage ``i`` is ``3.5 + 0.5 * (i - 1)`` for
    ``SuperResConvK1KX`` stages and ``2.5`` for ``SuperResConvKXKX``
    stages, unless ``expand_ratios`` (one per non-stem stage) is given.
    ``btn`` and ``k`` of the stages are not used by this block. Without
    Focus, the stem is a ``k``x``k`` conv with stride 2 (the spec stride
    of the stem is ignored, as in the official nano models).

    Args:
        structure (str | list[dict]): Structure spec.
        out_indices (Sequence[int]): Stages to output (0 = stem).
        use_focus (bool): Focus stem.
        with_spp (bool): SPP after the first block of the last stage.
        depthwise (bool): Depthwise 5x5 conv in the blocks (``False`` uses
            a dense 5x5 conv; not an official configuration).
        use_se (bool): Squeeze-and-excitation in every block.
        expand_ratios (Sequence[float], optional): Per-stage expansion.
        act_cfg (dict): Activation config.
        spp_act_cfg (dict): Activation inside the SPP.
        norm_cfg (dict): Norm config.
        frozen_stages (int): Freeze stages ``0..frozen_stages``.
        norm_eval (bool): Keep BN layers in eval mode while training.
    """

    def __init__(self,
                 structure: StructureType = 'tinynas_nano_small',
                 out_indices: Sequence[int] = (2, 4, 5),
                 use_focus: bool = False,
                 with_spp: bool = True,
                 depthwise: bool = True,
                 use_se: bool = False,
                 expand_ratios: Optional[Sequence[float]] = None,
                 act_cfg: ConfigType = dict(type='SiLU', inplace=True),
                 spp_act_cfg: ConfigType = dict(type='SiLU', inplace=True),
                 norm_cfg: ConfigType = DEFAULT_NORM_CFG,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(structure, out_indices, frozen_stages, norm_eval,
                         init_cfg)
        stages = self.structure
        if expand_ratios is not None and \
                len(expand_ratios) != len(stages) - 1:
            raise ValueError(
                f'TinyNASMob: expand_ratios needs {len(stages) - 1} values '
                f'(one per non-stem stage), got {list(expand_ratios)}')
        self._add_stem(use_focus, 2, norm_cfg, act_cfg)

        def block(idx: int, st: dict, b: int) -> nn.Module:
            ratio = (expand_ratios[idx - 1] if expand_ratios is not None
                     else mobile_expand_ratio(st['class'], idx))
            return MobileInvertedBlock(
                st['in'] if b == 0 else st['out'], st['out'],
                stride=st['s'] if b == 0 else 1, expand_ratio=ratio,
                dw_kernel_size=5, use_se=use_se, depthwise=depthwise,
                norm_cfg=norm_cfg, act_cfg=act_cfg)

        self._add_block_stages(block, with_spp, norm_cfg, spp_act_cfg)


class TinyNASCSPStage(BaseModule):
    """One CSP stage of :class:`TinyNASCSP`.

    ``downsample`` (3x3 stride 2 to ``2 * hidden``), optional SPP, then a
    split: ``short_conv`` (1x1 to ``out // 2``) and ``main_conv`` (1x1 to
    ``hidden``) followed by the residual blocks; both halves concatenated
    and fused by ``final_conv`` (1x1). Without blocks only the
    downsample (and SPP) remain.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 hidden_channels: int,
                 blocks: List[nn.Module],
                 with_spp: bool,
                 norm_cfg: ConfigType,
                 transition_act_cfg: OptConfigType,
                 spp_act_cfg: OptConfigType,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        mid = 2 * hidden_channels
        self.downsample = ConvModule(
            in_channels, mid, 3, stride=2, padding=1, norm_cfg=norm_cfg,
            act_cfg=transition_act_cfg)
        self.spp = DAMOSPPBottleneck(
            mid, mid, norm_cfg=norm_cfg,
            act_cfg=spp_act_cfg) if with_spp else None
        self.with_blocks = len(blocks) > 0
        if self.with_blocks:
            self.main_conv = ConvModule(
                mid, hidden_channels, 1, norm_cfg=norm_cfg,
                act_cfg=transition_act_cfg)
            self.short_conv = ConvModule(
                mid, out_channels // 2, 1, norm_cfg=norm_cfg,
                act_cfg=transition_act_cfg)
            self.blocks = nn.Sequential(*blocks)
            self.final_conv = ConvModule(
                out_channels, out_channels, 1, norm_cfg=norm_cfg,
                act_cfg=transition_act_cfg)

    def forward(self, x: Tensor) -> Tensor:
        x = self.downsample(x)
        if self.spp is not None:
            x = self.spp(x)
        if not self.with_blocks:
            return x
        short = self.short_conv(x)
        x = self.blocks(self.main_conv(x))
        return self.final_conv(torch.cat((x, short), dim=1))


@MODELS.register_module()
class TinyNASCSP(TinyNASBase):
    """CSP TinyNAS backbone (DAMO-YOLO-M/L).

    Spec stages are grouped into CSP stages: every stride-2 stage opens a
    new group and stride-1 stages join the preceding group (the official
    6-entry specs give stem + 4 CSP stages, the 4th and 5th spec entries
    sharing one). ``out_indices`` count these CSP stages (0 = stem), so
    (2, 3, 4) gives strides 8, 16, 32.

    In a group with spec entries ``e_0..e_m`` (``hidden = e_0.out // 2``):
    the stride-2 entry contributes ``L - 1`` residual blocks at width
    ``hidden``, every stride-1 entry ``L`` blocks (the first from
    ``in // 2`` to ``out // 2``). All blocks have stride 1. ``with_spp``
    places the SPP right after the downsample of the last stage.

    Args:
        structure (str | list[dict]): Structure spec.
        out_indices (Sequence[int]): CSP stages to output (0 = stem).
        use_focus (bool): Focus stem.
        with_spp (bool): SPP in the last CSP stage.
        reparam (bool): :class:`RepConv` as second conv of every block.
        act_cfg (dict): Activation of the stem and the residual blocks.
        transition_act_cfg (dict): Activation of the CSP downsample /
            split / fuse convs (ReLU in DAMO-YOLO-M/L whatever ``act_cfg``).
        spp_act_cfg (dict): Activation inside the SPP.
        norm_cfg (dict): Norm config.
        frozen_stages (int): Freeze stages ``0..frozen_stages``.
        norm_eval (bool): Keep BN layers in eval mode while training.
    """

    def __init__(self,
                 structure: StructureType = 'tinynas_L35_kxkx',
                 out_indices: Sequence[int] = (2, 3, 4),
                 use_focus: bool = True,
                 with_spp: bool = True,
                 reparam: bool = True,
                 act_cfg: ConfigType = dict(type='SiLU', inplace=True),
                 transition_act_cfg: ConfigType = dict(
                     type='ReLU', inplace=True),
                 spp_act_cfg: ConfigType = dict(type='SiLU', inplace=True),
                 norm_cfg: ConfigType = DEFAULT_NORM_CFG,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(structure, out_indices, frozen_stages, norm_eval,
                         init_cfg)
        stages = self.structure
        self._add_stem(use_focus, stages[0]['s'], norm_cfg, act_cfg)
        groups: List[List[int]] = []
        for idx, st in enumerate(stages[1:], start=1):
            if st['s'] == 2:
                groups.append([idx])
            elif not groups:
                raise ValueError(
                    f"TinyNASCSP: stage {idx} key 's' = 1 but a CSP stage "
                    'must start with a stride-2 stage')
            else:
                groups[-1].append(idx)
        self.stage_groups = groups
        for g, members in enumerate(groups, start=1):
            first, lastst = stages[members[0]], stages[members[-1]]
            hidden = first['out'] // 2
            blocks = []
            for idx in members:
                st = stages[idx]
                n = st['L'] - 1 if st['s'] == 2 else st['L']
                for b in range(n):
                    if st['s'] == 1 and b == 0:
                        cin = st['in'] // 2
                    else:
                        cin = st['out'] // 2
                    blocks.append(
                        TinyNASResBlock(
                            cin, st['out'] // 2, st['btn'], st['k'], 1,
                            block_type=STAGE_CLASSES[st['class']],
                            reparam=reparam, norm_cfg=norm_cfg,
                            act_cfg=act_cfg))
            out_ch = lastst['out'] if blocks else 2 * hidden
            self.add_module(
                f'stage{g}',
                TinyNASCSPStage(first['in'], out_ch, hidden, blocks,
                                with_spp and g == len(groups), norm_cfg,
                                transition_act_cfg, spp_act_cfg))
            self.layers.append(f'stage{g}')
            self.layer_out_channels.append(out_ch)
        self._check_out_indices()
