"""Neck-feature distillation losses of DAMO-YOLO.

The student's neck outputs are mapped to the teacher's channel count by a
1x1 convolution per level (the *align module*); both feature maps then pass
a BatchNorm without affine parameters that always normalises with the
statistics of the current batch, and a feature loss compares them level by
level. The per-level losses are summed.

Three feature losses are available (DAMO-YOLO's ``distiller`` choices):

* ``'cwd'`` -> :class:`CWDLoss`, channel-wise distillation (the default),
* ``'mimic'`` -> :class:`MimicLoss`, mean squared error,
* ``'mgd'`` -> :class:`MGDLoss`, masked generative distillation.
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

from mmdet.utils import OptMultiConfig

#: shorthand names accepted by :class:`NeckDistillLoss` (``loss='cwd'``)
FEATURE_LOSS_ALIASES: Dict[str, str] = {
    'cwd': 'CWDLoss',
    'mimic': 'MimicLoss',
    'mse': 'MimicLoss',
    'mgd': 'MGDLoss',
}


def _shapes(feats: Sequence[Tensor]) -> List[tuple]:
    return [tuple(f.shape) for f in feats]


def _check_pairs(name: str, preds_s: Sequence[Tensor],
                 preds_t: Sequence[Tensor]) -> None:
    """Same number of levels and identical shapes level by level."""
    if len(preds_s) != len(preds_t):
        raise ValueError(
            f'{name}: got {len(preds_s)} student levels {_shapes(preds_s)} '
            f'but {len(preds_t)} teacher levels {_shapes(preds_t)}')
    for lvl, (s, t) in enumerate(zip(preds_s, preds_t)):
        if s.shape != t.shape:
            raise ValueError(
                f'{name}: level {lvl} student feature {tuple(s.shape)} and '
                f'teacher feature {tuple(t.shape)} differ in shape')


@MODELS.register_module()
class CWDLoss(nn.Module):
    r"""Channel-wise distillation (Shu et al., ICCV 2021).

    Every channel of a ``(N, C, H, W)`` map is turned into a distribution
    over its ``H * W`` positions with a softmax at temperature :math:`\tau`;
    the loss of one level is the KL divergence from the teacher to the
    student distribution, summed over positions and channels and divided by
    ``N * C``, times :math:`\tau^2`:

    .. math::

        L = \frac{\tau^2}{N C} \sum_{n, c} \sum_{i} p^T_{nci}
            \left(\log p^T_{nci} - \log p^S_{nci}\right),\qquad
        p_{nc\cdot} = \mathrm{softmax}(x_{nc\cdot} / \tau).

    Args:
        tau (float): Softmax temperature. Defaults to 1.0 (DAMO-YOLO).
        channels (Sequence[int], optional): Teacher channels per level;
            not used, accepted for a uniform interface.
    """

    def __init__(self,
                 tau: float = 1.0,
                 channels: Optional[Sequence[int]] = None) -> None:
        super().__init__()
        if not tau > 0:
            raise ValueError(f'CWDLoss: tau must be > 0, got {tau}')
        self.tau = float(tau)

    def forward(self, preds_s: Sequence[Tensor],
                preds_t: Sequence[Tensor]) -> Tensor:
        """Sum of the per-level losses.

        Args:
            preds_s (Sequence[Tensor]): Student maps ``(N, C, H, W)``.
            preds_t (Sequence[Tensor]): Teacher maps, same shapes.
        """
        _check_pairs('CWDLoss', preds_s, preds_t)
        total = preds_s[0].new_zeros(())
        for s, t in zip(preds_s, preds_t):
            n, c, h, w = s.shape
            log_p_s = F.log_softmax(s.reshape(n * c, h * w) / self.tau, dim=1)
            log_p_t = F.log_softmax(t.reshape(n * c, h * w) / self.tau, dim=1)
            kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum()
            total = total + kl * self.tau**2 / (n * c)
        return total


@MODELS.register_module()
class MimicLoss(nn.Module):
    """Feature mimicking: mean squared error per level, summed over levels.

    Args:
        channels (Sequence[int], optional): Not used, accepted for a uniform
            interface.
    """

    def __init__(self, channels: Optional[Sequence[int]] = None) -> None:
        super().__init__()

    def forward(self, preds_s: Sequence[Tensor],
                preds_t: Sequence[Tensor]) -> Tensor:
        _check_pairs('MimicLoss', preds_s, preds_t)
        total = preds_s[0].new_zeros(())
        for s, t in zip(preds_s, preds_t):
            total = total + F.mse_loss(s, t, reduction='mean')
        return total


@MODELS.register_module()
class MGDLoss(BaseModule):
    r"""Masked generative distillation (Yang et al., ECCV 2022).

    Per level, a random spatial mask (shared by the channels) zeroes each
    position of the student map with probability ``lambda_mgd``; a small
    generator (3x3 conv, ReLU, 3x3 conv, at the teacher's width) rebuilds the
    teacher map from the masked student map:

    .. math::

        L = \alpha \sum_{levels} \frac{1}{N}
            \left\lVert G(S \odot M) - T \right\rVert_2^2,\qquad
        M_{n,1,h,w} = [u_{nhw} \le 1 - \lambda],\ u \sim U[0, 1).

    The generators are registered sub-modules: they are trained with the
    student and saved with the distiller. (In DAMO-YOLO's reference trainer
    they sit in a plain Python list, so there they keep their random
    initialisation.)

    Args:
        channels (Sequence[int]): Teacher channels per level (width of the
            generators). The distiller fills this in.
        alpha_mgd (float): Loss scale. Defaults to 2e-5.
        lambda_mgd (float): Masking probability. Defaults to 0.65.
        init_cfg (dict, optional): Initialisation config of the generators
            (PyTorch's default conv initialisation when None).
    """

    def __init__(self,
                 channels: Sequence[int],
                 alpha_mgd: float = 0.00002,
                 lambda_mgd: float = 0.65,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if channels is None or len(channels) == 0:
            raise ValueError('MGDLoss: `channels` (teacher channels per '
                             f'level) is required, got {channels!r}')
        if not 0. <= lambda_mgd <= 1.:
            raise ValueError(
                f'MGDLoss: lambda_mgd must be in [0, 1], got {lambda_mgd}')
        self.channels = [int(c) for c in channels]
        self.alpha_mgd = float(alpha_mgd)
        self.lambda_mgd = float(lambda_mgd)
        self.generation = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c, c, kernel_size=3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(c, c, kernel_size=3, padding=1))
            for c in self.channels)

    def random_mask(self, feat: Tensor) -> Tensor:
        """``(N, 1, H, W)`` mask of 0 (dropped, probability ``lambda_mgd``)
        and 1 (kept); drawn on the CPU generator for reproducibility."""
        n, _, h, w = feat.shape
        u = torch.rand((n, 1, h, w))
        return (u <= 1. - self.lambda_mgd).to(feat.dtype).to(feat.device)

    def forward(self, preds_s: Sequence[Tensor],
                preds_t: Sequence[Tensor]) -> Tensor:
        _check_pairs('MGDLoss', preds_s, preds_t)
        if len(preds_s) != len(self.generation):
            raise ValueError(
                f'MGDLoss: built for {len(self.generation)} levels with '
                f'channels {self.channels}, got {len(preds_s)} levels '
                f'{_shapes(preds_s)}')
        total = preds_s[0].new_zeros(())
        for lvl, (s, t) in enumerate(zip(preds_s, preds_t)):
            if s.shape[1] != self.channels[lvl]:
                raise ValueError(
                    f'MGDLoss: level {lvl} expects {self.channels[lvl]} '
                    f'channels, got a feature of shape {tuple(s.shape)}')
            new_feat = self.generation[lvl](s * self.random_mask(s))
            dis = F.mse_loss(new_feat, t, reduction='sum') / s.shape[0]
            total = total + dis * self.alpha_mgd
        return total


@MODELS.register_module()
class NeckDistillLoss(BaseModule):
    """Align, normalise and compare the neck features of student and teacher.

    For every level ``i``: ``s_i' = BN(align_i(s_i))``, ``t_i' = BN(t_i)``
    where ``align_i`` is a 1x1 convolution (with bias) from the student's to
    the teacher's channels and ``BN`` a BatchNorm without affine parameters
    nor running statistics (it always uses the statistics of the current
    batch, eps 1e-5); the result is ``loss_weight * loss(s', t')``.

    Args:
        student_channels (Sequence[int]): Student neck channels per level.
        teacher_channels (Sequence[int]): Teacher neck channels per level.
        loss (str | dict): The feature loss: ``'cwd'`` (default),
            ``'mimic'`` / ``'mse'``, ``'mgd'``, or a config dict of a
            registered loss taking ``(preds_s, preds_t)`` lists.
        loss_weight (float): Constant factor. Defaults to 1.0.
        norm_eps (float): eps of the normalisation. Defaults to 1e-5.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 student_channels: Sequence[int],
                 teacher_channels: Sequence[int],
                 loss: Union[str, dict] = 'cwd',
                 loss_weight: float = 1.0,
                 norm_eps: float = 1e-5,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        student_channels = [int(c) for c in student_channels]
        teacher_channels = [int(c) for c in teacher_channels]
        if len(student_channels) != len(teacher_channels) or \
                not student_channels:
            raise ValueError(
                'NeckDistillLoss: student and teacher necks must have the '
                f'same (non-zero) number of levels, got student channels '
                f'{student_channels} and teacher channels {teacher_channels}')
        self.student_channels = student_channels
        self.teacher_channels = teacher_channels
        self.loss_weight = float(loss_weight)
        self.align_module = nn.ModuleList(
            nn.Conv2d(cs, ct, kernel_size=1, stride=1, padding=0)
            for cs, ct in zip(student_channels, teacher_channels))
        self.norm = nn.ModuleList(
            nn.BatchNorm2d(
                ct, eps=norm_eps, affine=False, track_running_stats=False)
            for ct in teacher_channels)
        if isinstance(loss, str):
            if loss.lower() not in FEATURE_LOSS_ALIASES:
                raise ValueError(
                    f'NeckDistillLoss: unknown loss {loss!r}, expected one '
                    f'of {sorted(FEATURE_LOSS_ALIASES)} or a config dict')
            loss = dict(type=FEATURE_LOSS_ALIASES[loss.lower()])
        if not isinstance(loss, dict) or 'type' not in loss:
            raise TypeError('NeckDistillLoss: `loss` must be a name or a '
                            f'config dict with a `type`, got {loss!r}')
        loss = dict(loss)
        loss.setdefault('channels', teacher_channels)
        self.feature_loss = MODELS.build(loss)

    def align_and_norm(self, feats_s: Sequence[Tensor],
                       feats_t: Sequence[Tensor]):
        """Return the aligned + normalised student and teacher features."""
        feats_s, feats_t = list(feats_s), list(feats_t)
        if len(feats_s) != len(self.align_module) or \
                len(feats_t) != len(self.align_module):
            raise ValueError(
                f'NeckDistillLoss (built for {len(self.align_module)} levels, '
                f'student channels {self.student_channels}, teacher channels '
                f'{self.teacher_channels}): the student neck gave '
                f'{len(feats_s)} levels {_shapes(feats_s)} and the teacher '
                f'neck {len(feats_t)} levels {_shapes(feats_t)}')
        out_s, out_t = [], []
        for lvl, (s, t) in enumerate(zip(feats_s, feats_t)):
            cs, ct = self.student_channels[lvl], self.teacher_channels[lvl]
            if s.dim() != 4 or t.dim() != 4 or s.shape[1] != cs or \
                    t.shape[1] != ct or s.shape[0] != t.shape[0] or \
                    s.shape[2:] != t.shape[2:]:
                raise ValueError(
                    f'NeckDistillLoss: level {lvl}: student feature '
                    f'{tuple(s.shape)} (expected {cs} channels) and teacher '
                    f'feature {tuple(t.shape)} (expected {ct} channels) must '
                    'be (N, C, H, W) maps with the same batch size and '
                    'spatial size; student shapes '
                    f'{_shapes(feats_s)}, teacher shapes {_shapes(feats_t)}')
            out_s.append(self.norm[lvl](self.align_module[lvl](s)))
            out_t.append(self.norm[lvl](t))
        return out_s, out_t

    def forward(self, feats_s: Sequence[Tensor],
                feats_t: Sequence[Tensor]) -> Tensor:
        """Weighted feature loss of the student and teacher neck outputs."""
        preds_s, preds_t = self.align_and_norm(feats_s, feats_t)
        return self.loss_weight * self.feature_loss(preds_s, preds_t)
