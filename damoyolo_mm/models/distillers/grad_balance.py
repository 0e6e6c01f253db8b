"""Bounding the distillation gradient on the student's neck features.

The student's neck outputs feed two losses: the detection head and the
feature distillation. :class:`GradNormBalance` splits every neck output into
two identical views, one per loss; in the backward pass it receives both
gradients at once, per level ``l``: ``g_det`` (from the head) and ``g_dis``
(from the distillation loss), and passes on

    ``g_det + s_l * g_dis``,  ``s_l = min(1, r * ||g_det|| / ||g_dis||)``

so that the distillation part reaching the student's neck and backbone is at
most ``r`` (``max_ratio``) times the detection part in L2 norm, at every
level and every iteration, whatever the optimizer, the loss weight or the
feature scale. The head gets only ``g_det``; the align convolutions of the
distillation loss get their own (unscaled) gradient. With ``s_l = 1`` (the
distillation gradient already within the bound) nothing changes.

:func:`feature_gradient_scales` is the same rule on given gradients (used by
the gradient analysis).
"""
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor

BALANCE_TYPES = ('grad_norm', )


def check_balance_cfg(balance: Optional[dict]) -> Optional[dict]:
    """Validate the ``balance`` option of the distiller (None: off)."""
    if balance is None:
        return None
    if not isinstance(balance, dict) or \
            balance.get('type') not in BALANCE_TYPES:
        raise ValueError(
            'DAMOYOLODistiller: balance must be None (the official, '
            'unbounded distillation) or dict(type=\'grad_norm\', '
            f'max_ratio=R) with R > 0; got {balance!r}')
    unknown = set(balance) - {'type', 'max_ratio', 'eps'}
    if unknown:
        raise ValueError(f'DAMOYOLODistiller: balance has unknown keys '
                         f'{sorted(unknown)} (expected type, max_ratio, '
                         f'eps); got {balance!r}')
    ratio = balance.get('max_ratio', 0.5)
    if not isinstance(ratio, (int, float)) or not ratio > 0:
        raise ValueError('DAMOYOLODistiller: balance max_ratio must be a '
                         f'number > 0, got {ratio!r}')
    return dict(type='grad_norm', max_ratio=float(ratio),
                eps=float(balance.get('eps', 1e-12)))


def feature_gradient_scales(g_det: Sequence[Optional[Tensor]],
                            g_dis: Sequence[Optional[Tensor]],
                            max_ratio: float,
                            eps: float = 1e-12) -> List[float]:
    """Per level ``min(1, max_ratio * ||g_det|| / ||g_dis||)``."""
    scales = []
    for gd, gs in zip(g_det, g_dis):
        if gs is None:
            scales.append(1.)
            continue
        n_dis = float(gs.detach().float().norm())
        n_det = 0. if gd is None else float(gd.detach().float().norm())
        scales.append(min(1., max_ratio * n_det / max(n_dis, eps)))
    return scales


class _GradNormBalanceFn(torch.autograd.Function):

    @staticmethod
    def forward(ctx, state: dict, *feats: Tensor):
        ctx.state = state
        ctx.num = len(feats)
        # two views of each feature: (detection, distillation)
        return tuple(f.view_as(f) for f in feats) + tuple(
            f.view_as(f) for f in feats)

    @staticmethod
    def backward(ctx, *grads):
        state, num = ctx.state, ctx.num
        g_det, g_dis = grads[:num], grads[num:]
        scales = feature_gradient_scales(g_det, g_dis, state['max_ratio'],
                                         state['eps'])
        state['last'] = dict(
            scales=scales,
            det_norms=[0. if g is None else float(g.float().norm())
                       for g in g_det],
            dis_norms=[0. if g is None else float(g.float().norm())
                       for g in g_dis])
        out = []
        for gd, gs, s in zip(g_det, g_dis, scales):
            if gd is None and gs is None:
                out.append(None)
            elif gs is None:
                out.append(gd)
            elif gd is None:
                out.append(gs * s)
            else:
                out.append(gd + gs * s)
        return (None, *out)


class GradNormBalance:
    """Split features into detection / distillation views whose combined
    gradient keeps the distillation part within ``max_ratio`` times the
    detection part (per level, L2 norm).

    ``last`` holds, after each backward pass, the per-level scales and the
    gradient norms before scaling (``det_norms``, ``dis_norms``).
    """

    def __init__(self, max_ratio: float = 0.5, eps: float = 1e-12) -> None:
        self.state = dict(max_ratio=float(max_ratio), eps=float(eps),
                          last=None)

    @property
    def max_ratio(self) -> float:
        return self.state['max_ratio']

    @property
    def last(self) -> Optional[dict]:
        return self.state['last']

    def __call__(self, feats: Sequence[Tensor]
                 ) -> Tuple[Tuple[Tensor, ...], Tuple[Tensor, ...]]:
        feats = tuple(feats)
        if not any(f.requires_grad for f in feats):
            return feats, feats
        out = _GradNormBalanceFn.apply(self.state, *feats)
        return out[:len(feats)], out[len(feats):]


def _flat(grads: Sequence[Optional[Tensor]],
          params: Sequence[Tensor]) -> Tensor:
    return torch.cat([(torch.zeros_like(p) if g is None else g).flatten()
                      for g, p in zip(grads, params)]).float()


def distill_gradient_stats(distiller, inputs: Tensor,
                           data_samples) -> dict:
    """Norms and cosine of the detection and distillation gradients on the
    student's backbone, neck and head for one pre-processed batch.

    The distillation gradient is the one the training applies: scaled per
    level by the distiller's ``balance`` rule when it has one, times the
    current ``distill_weight``. Returns a dict with ``det_<part>``,
    ``dis_<part>`` (L2 norms), ``cos_<part>`` for part in backbone, neck,
    head, and ``ratio_feat`` (largest per-level ratio of the distillation to
    the detection gradient norm on the neck outputs, after balancing) and
    ``ratio_feat_raw`` (the same before balancing). Parameter gradients are
    not touched.
    """
    student = distiller.student
    parts = {}
    for part in ('backbone', 'neck', 'bbox_head'):
        mod = getattr(student, part)
        parts[part] = [p for p in mod.parameters() if p.requires_grad]
    # views: the gradient w.r.t. them is what each loss sends to a level
    # (a neck output also feeds other levels inside the neck)
    feats = tuple(f.view_as(f) for f in student.extract_feat(inputs))
    losses = student.bbox_head.loss(feats, data_samples)
    det = sum(v.sum() if isinstance(v, Tensor) else sum(x.sum() for x in v)
              for k, v in losses.items() if 'loss' in k)
    dis = distiller.distill_weight * distiller.distill_loss(
        feats, distiller.teacher_feats(inputs))
    g_det = torch.autograd.grad(det, feats, retain_graph=True,
                                allow_unused=True)
    g_dis = torch.autograd.grad(dis, feats, retain_graph=True,
                                allow_unused=True)
    raw = [float(b.norm()) / max(float(a.norm()), 1e-12)
           for a, b in zip(g_det, g_dis)]
    if distiller.grad_balance is not None:
        scales = feature_gradient_scales(g_det, g_dis,
                                         distiller.grad_balance.max_ratio)
    else:
        scales = [1.] * len(feats)
    g_dis = [g * s for g, s in zip(g_dis, scales)]
    stats = dict(ratio_feat_raw=max(raw),
                 ratio_feat=max(r * s for r, s in zip(raw, scales)))
    head_det = torch.autograd.grad(det, parts['bbox_head'],
                                   retain_graph=True, allow_unused=True)
    shared = parts['backbone'] + parts['neck']
    sh_det = torch.autograd.grad(feats, shared, grad_outputs=g_det,
                                 retain_graph=True, allow_unused=True)
    sh_dis = torch.autograd.grad(feats, shared, grad_outputs=g_dis,
                                 allow_unused=True)
    nb = len(parts['backbone'])
    pairs = dict(
        backbone=(_flat(sh_det[:nb], parts['backbone']),
                  _flat(sh_dis[:nb], parts['backbone'])),
        neck=(_flat(sh_det[nb:], parts['neck']),
              _flat(sh_dis[nb:], parts['neck'])),
        head=(_flat(head_det, parts['bbox_head']),
              torch.zeros(sum(p.numel() for p in parts['bbox_head']))))
    for part, (a, b) in pairs.items():
        na, nb_ = float(a.norm()), float(b.norm())
        stats[f'det_{part}'] = na
        stats[f'dis_{part}'] = nb_
        stats[f'cos_{part}'] = (float(a @ b) / (na * nb_)
                                if na > 0 and nb_ > 0 else 0.)
    return stats
