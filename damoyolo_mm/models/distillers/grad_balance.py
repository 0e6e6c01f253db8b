"""Bounding the distillation gradient where it meets the detection gradient.

Some tensors of the student feed two losses: the neck outputs feed the head
and the feature distillation, the head outputs feed the detection losses
and the prediction distillation. :class:`GradNormBalance` splits every such
tensor into two identical views, one per loss; in the backward pass it
receives both gradients at once, ``g_det`` (detection) and ``g_dis``
(distillation), and passes on

    ``g_det + s * g_dis``,  ``s = min(1, r * ||g_det|| / ||g_dis||)``

per tensor (``scope='level'``) or with one ``s`` from the norms over all the
tensors together (``scope='all'``), so that the distillation part reaching
the rest of the student is at most ``r`` (``max_ratio``) times the
detection part in L2 norm, at every iteration, whatever the optimizer, the
loss weight or the feature scale. The detection loss gets only ``g_det``;
modules of the distillation loss (align convolutions) get their own,
unscaled gradient. With ``s = 1`` (the distillation gradient already
within the bound) nothing changes.

:func:`feature_gradient_scales` is the same rule on given gradients;
:func:`distill_gradient_stats` measures both gradients on the student's
parameters (used by the gradient analysis and ``DistillGradientHook``).
"""
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor

BALANCE_TYPES = ('grad_norm', )
# 'level': one scale per tensor (level); 'all': one scale for all of them
SCOPES = ('level', 'all')


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
    unknown = set(balance) - {'type', 'max_ratio', 'eps', 'scope'}
    if unknown:
        raise ValueError(f'DAMOYOLODistiller: balance has unknown keys '
                         f'{sorted(unknown)} (expected type, max_ratio, '
                         f'scope, eps); got {balance!r}')
    scope = balance.get('scope', 'level')
    if scope not in SCOPES:
        raise ValueError(f'DAMOYOLODistiller: balance scope must be one of '
                         f'{SCOPES}, got {scope!r}')
    ratio = balance.get('max_ratio', 0.5)
    if not isinstance(ratio, (int, float)) or not ratio > 0:
        raise ValueError('DAMOYOLODistiller: balance max_ratio must be a '
                         f'number > 0, got {ratio!r}')
    return dict(type='grad_norm', max_ratio=float(ratio), scope=scope,
                eps=float(balance.get('eps', 1e-12)))


def _norms(grads: Sequence[Optional[Tensor]]) -> List[Optional[float]]:
    """L2 norm of each gradient (None where there is none)."""
    return [None if g is None else float(g.detach().float().norm())
            for g in grads]


def _scales(n_det: Sequence[Optional[float]],
            n_dis: Sequence[Optional[float]], max_ratio: Optional[float],
            eps: float, scope: str) -> List[float]:
    """The rule of :func:`feature_gradient_scales` on gradient norms."""
    if max_ratio is None:
        return [1.] * len(n_dis)
    if scope == 'all':
        def total(norms):
            return sum(n * n for n in norms if n is not None)**0.5

        t_dis = total(n_dis)
        scale = 1. if t_dis == 0 else min(
            1., max_ratio * total(n_det) / max(t_dis, eps))
        return [scale] * len(n_dis)
    return [1. if b is None else min(1., max_ratio * (a or 0.) / max(b, eps))
            for a, b in zip(n_det, n_dis)]


def feature_gradient_scales(g_det: Sequence[Optional[Tensor]],
                            g_dis: Sequence[Optional[Tensor]],
                            max_ratio: Optional[float],
                            eps: float = 1e-12,
                            scope: str = 'level') -> List[float]:
    """Per level ``min(1, max_ratio * ||g_det|| / ||g_dis||)``; all 1 when
    ``max_ratio`` is None (measuring only). ``scope='all'``: one scale from
    the norms over all levels together."""
    return _scales(_norms(g_det), _norms(g_dis), max_ratio, eps, scope)


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
        # one norm per gradient, for the rule and the record
        n_det, n_dis = _norms(g_det), _norms(g_dis)
        scales = _scales(n_det, n_dis, state['max_ratio'], state['eps'],
                         state['scope'])
        state['last'] = dict(scales=scales,
                             det_norms=[n or 0. for n in n_det],
                             dis_norms=[n or 0. for n in n_dis])
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
    detection part (per level, L2 norm). ``max_ratio=None`` scales nothing
    and only records the norms.

    ``last`` holds, after each backward pass, the per-level scales and the
    gradient norms before scaling (``det_norms``, ``dis_norms``).
    """

    def __init__(self, max_ratio: Optional[float] = 0.5,
                 eps: float = 1e-12, scope: str = 'level') -> None:
        self.state = dict(
            max_ratio=None if max_ratio is None else float(max_ratio),
            eps=float(eps), scope=scope, last=None)

    @property
    def max_ratio(self) -> Optional[float]:
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


def _ratios(balance: 'GradNormBalance') -> Tuple[float, float]:
    """Largest per-tensor ratio distillation / detection gradient norm of
    the last backward pass, after and before the balance."""
    last = balance.last
    det, dis = last['det_norms'], last['dis_norms']
    if balance.state['scope'] == 'all':
        det = [sum(a * a for a in det)**0.5]
        dis = [sum(b * b for b in dis)**0.5]
    raw = [b / max(a, 1e-12) for a, b in zip(det, dis)]
    return (max(r * s for r, s in zip(raw, last['scales'])), max(raw))


def distill_gradient_stats(distiller, inputs: Tensor,
                           data_samples) -> dict:
    """Norms and cosine of the detection and distillation gradients on the
    student's backbone, neck and head for one pre-processed batch.

    The distillation gradient is the one the training applies (the
    distiller's ``balance`` included, times the current ``distill_weight``):
    the gradient of all losses minus that of the detection losses. Returns
    a dict with ``det_<part>``, ``dis_<part>`` (L2 norms), ``cos_<part>``
    for part in backbone, neck, head, and, per place where the two kinds of
    losses read the same tensors, the largest ratio of the distillation to
    the detection gradient norm there, after and before the balance:
    ``ratio_feat`` / ``ratio_feat_raw`` (neck outputs, per level; 0 without
    feature distillation) and ``ratio_pred`` / ``ratio_pred_raw`` (head
    outputs, per level and kind; 0 without prediction distillation).
    Parameter gradients are not touched.
    """
    student = distiller.student
    parts = {}
    for part in ('backbone', 'neck', 'bbox_head'):
        mod = getattr(student, part)
        parts[part] = [p for p in mod.parameters() if p.requires_grad]
    params = parts['backbone'] + parts['neck'] + parts['bbox_head']
    # without a balance, measuring instances (no scaling) record the norms
    saved = (distiller.grad_balance, distiller.head_grad_balance)
    if distiller.grad_balance is None and \
            distiller.distill_loss is not None:
        distiller.grad_balance = GradNormBalance(max_ratio=None)
    if distiller.head_grad_balance is None and \
            distiller.head_distill is not None:
        distiller.head_grad_balance = GradNormBalance(max_ratio=None)
    try:
        det, dis = distiller.split_losses(inputs, data_samples)
        det = sum(v.sum() if isinstance(v, Tensor) else
                  sum(x.sum() for x in v)
                  for k, v in det.items() if 'loss' in k)
        dis = sum(dis.values())
        g_det = torch.autograd.grad(det, params, retain_graph=True,
                                    allow_unused=True)
        g_all = torch.autograd.grad(det + dis, params, allow_unused=True)
        stats = {}
        for key, bal in (('feat', distiller.grad_balance),
                         ('pred', distiller.head_grad_balance)):
            after, raw = _ratios(bal) if bal is not None else (0., 0.)
            stats[f'ratio_{key}'] = after
            stats[f'ratio_{key}_raw'] = raw
    finally:
        distiller.grad_balance, distiller.head_grad_balance = saved
    start = 0
    for part, key in (('backbone', 'backbone'), ('neck', 'neck'),
                      ('bbox_head', 'head')):
        n = len(parts[part])
        sl = slice(start, start + n)
        start += n
        a = _flat(g_det[sl], parts[part])
        b = _flat(g_all[sl], parts[part]) - a
        na, nb_ = float(a.norm()), float(b.norm())
        stats[f'det_{key}'] = na
        stats[f'dis_{key}'] = nb_
        stats[f'cos_{key}'] = (float(a @ b) / (na * nb_)
                               if na > 0 and nb_ > 0 else 0.)
    return stats
