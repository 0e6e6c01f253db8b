"""HeadDistillLoss: the teacher's class scores and box distributions as soft
targets for the student, against a hand-written reference."""
import pytest
import torch
import torch.nn.functional as F

from damoyolo_mm.models.distillers import HeadDistillLoss

SIZES = ((8, 8), (4, 4), (2, 2))


def _outs(num_classes=3, reg_max=7, batch=2, seed=0, scale=1.):
    g = torch.Generator().manual_seed(seed)
    cls = [scale * torch.randn(batch, num_classes, h, w, generator=g)
           for h, w in SIZES]
    box = [scale * torch.randn(batch, 4 * (reg_max + 1), h, w, generator=g)
           for h, w in SIZES]
    return cls, box


def _reference(student, teacher, T=10., box_weight=0.25):
    """The formulas of the module docstring, written out per prior."""
    def flat(outs):
        cls = torch.cat([c.permute(0, 2, 3, 1).reshape(-1, c.shape[1])
                         for c in outs[0]])
        box = torch.cat([
            b.reshape(b.shape[0], 4, -1, b.shape[2] * b.shape[3]).permute(
                0, 3, 1, 2).reshape(-1, 4, b.shape[1] // 4) for b in outs[1]
        ])
        return cls, box

    s_cls, s_box = flat(student)
    t_cls, t_box = flat(teacher)
    t = t_cls.sigmoid()
    p = s_cls.sigmoid()
    w = t.max(1)[0]
    norm = max(float(w.sum()), 1.)
    qfl = F.binary_cross_entropy_with_logits(
        s_cls, t, reduction='none') * (t - p).abs()**2
    kl = (F.softmax(t_box / T, -1) * (F.log_softmax(t_box / T, -1) -
                                      F.log_softmax(s_box / T, -1)))
    kl = kl.mean(-1) * T * T  # (P, 4)
    box = (kl * w[:, None]).sum() / (4 * norm)
    return float(qfl.sum() / norm), float(box_weight * box)


def test_matches_the_reference():
    student, teacher = _outs(seed=0), _outs(seed=1, scale=2.)
    losses = HeadDistillLoss()(student, teacher)
    ref_cls, ref_box = _reference(student, teacher)
    assert float(losses['loss_distill_cls']) == pytest.approx(ref_cls,
                                                               rel=1e-5)
    assert float(losses['loss_distill_box']) == pytest.approx(ref_box,
                                                               rel=1e-5)
    assert ref_cls > 0.01 and ref_box > 0.01


def test_zero_at_the_teacher_and_a_step_moves_towards_it():
    teacher = _outs(seed=1)
    losses = HeadDistillLoss()(teacher, teacher)
    assert float(losses['loss_distill_cls']) < 1e-6
    assert float(losses['loss_distill_box']) < 1e-6
    student = [[t.clone().requires_grad_() for t in part]
               for part in _outs(seed=0)]
    loss_fn = HeadDistillLoss()
    before = sum(loss_fn(student, teacher).values())
    before.backward()
    with torch.no_grad():
        for part in student:
            for t in part:
                t -= 0.5 * t.grad / t.grad.norm()
    after = sum(loss_fn(student, teacher).values())
    assert float(after.detach()) < float(before.detach())


def test_teacher_outputs_get_no_gradient():
    student = [[t.requires_grad_() for t in part] for part in _outs(seed=0)]
    teacher = [[t.requires_grad_() for t in part] for part in _outs(seed=1)]
    sum(HeadDistillLoss()(student, teacher).values()).backward()
    assert all(t.grad is None for part in teacher for t in part)
    assert all(t.grad is not None for part in student for t in part)


def test_class_scores_only():
    student, teacher = _outs(reg_max=7), _outs(reg_max=16, seed=1)
    losses = HeadDistillLoss(loss_box=None)(student, teacher)
    assert set(losses) == {'loss_distill_cls'}


def test_mismatched_heads_name_both():
    with pytest.raises(ValueError, match=r'reg_max 7\).*reg_max 16'):
        HeadDistillLoss()(_outs(reg_max=7), _outs(reg_max=16))
    with pytest.raises(ValueError, match=r'\(2, 3, 8, 8\).*\(2, 5, 8, 8\)'):
        HeadDistillLoss()(_outs(num_classes=3), _outs(num_classes=5))
