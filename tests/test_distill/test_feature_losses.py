"""CWD / Mimic / MGD losses and the align + norm wrapper against hand-made
values on small tensors."""
import math
import os.path as osp

import pytest
import torch

from damoyolo_mm.models.distillers import (CWDLoss, MGDLoss, MimicLoss,
                                           NeckDistillLoss)


def _feats(seed, shapes):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=g) for s in shapes]


SHAPES = [(2, 3, 2, 3), (2, 4, 1, 2)]


def _cwd_by_hand(s_list, t_list, tau):
    total = 0.
    for s, t in zip(s_list, t_list):
        n, c, h, w = s.shape
        level = 0.
        for i in range(n):
            for j in range(c):
                xs = [float(v) / tau for v in s[i, j].flatten()]
                xt = [float(v) / tau for v in t[i, j].flatten()]
                zs = sum(math.exp(v) for v in xs)
                zt = sum(math.exp(v) for v in xt)
                for a, b in zip(xs, xt):
                    pt = math.exp(b) / zt
                    ps = math.exp(a) / zs
                    level += pt * (math.log(pt) - math.log(ps))
        total += level * tau**2 / (n * c)
    return total


@pytest.mark.parametrize('tau', [1.0, 2.5])
def test_cwd_matches_hand_computation(tau):
    s, t = _feats(0, SHAPES), _feats(1, SHAPES)
    s64 = [x.double() for x in s]
    t64 = [x.double() for x in t]
    got = CWDLoss(tau=tau)(s64, t64)
    assert got.item() == pytest.approx(_cwd_by_hand(s, t, tau), rel=1e-10)
    # KL is zero for identical inputs and positive otherwise
    assert CWDLoss(tau=tau)(t64, t64).item() == pytest.approx(0., abs=1e-12)
    assert got.item() > 0


def test_cwd_tiny_case_closed_form():
    # one channel, two positions: student logits (0, 0), teacher (log 3, 0)
    s = [torch.zeros(1, 1, 1, 2, dtype=torch.float64)]
    t = [torch.tensor([[[[math.log(3.), 0.]]]], dtype=torch.float64)]
    expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert CWDLoss()(s, t).item() == pytest.approx(expected, rel=1e-12)


def test_mimic_matches_hand_computation():
    s, t = _feats(2, SHAPES), _feats(3, SHAPES)
    expected = 0.
    for a, b in zip(s, t):
        vals = [(float(x) - float(y))**2
                for x, y in zip(a.flatten(), b.flatten())]
        expected += sum(vals) / len(vals)
    got = MimicLoss()(s, t)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_mgd_matches_hand_computation():
    channels = [3, 4]
    loss = MGDLoss(channels, alpha_mgd=0.5, lambda_mgd=0.65)
    s, t = _feats(4, SHAPES), _feats(5, SHAPES)
    torch.manual_seed(123)
    got = loss(s, t)
    # same masks: one torch.rand((N, 1, H, W)) per level, in level order
    torch.manual_seed(123)
    expected = 0.
    for lvl, (a, b) in enumerate(zip(s, t)):
        n, _, h, w = a.shape
        u = torch.rand((n, 1, h, w))
        mask = torch.where(u > 1 - 0.65, 0., 1.)
        conv1, _, conv2 = loss.generation[lvl]
        with torch.no_grad():
            y = torch.nn.functional.conv2d(a * mask, conv1.weight,
                                           conv1.bias, padding=1)
            y = torch.nn.functional.conv2d(y.clamp(min=0), conv2.weight,
                                           conv2.bias, padding=1)
        expected += ((y - b)**2).sum().item() / n * 0.5
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # the generators are trainable sub-modules (saved with the distiller)
    got.backward()
    assert loss.generation[0][0].weight.grad is not None
    assert any(k.startswith('generation.0.0') for k in loss.state_dict())


def test_mgd_mask_drops_lambda_fraction():
    loss = MGDLoss([1], lambda_mgd=0.65)
    torch.manual_seed(0)
    mask = loss.random_mask(torch.zeros(64, 1, 32, 32))
    assert set(mask.unique().tolist()) <= {0., 1.}
    assert (1 - mask.mean().item()) == pytest.approx(0.65, abs=0.01)


def _bn(x, eps=1e-5):
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps)


@pytest.mark.parametrize('name', ['cwd', 'mimic', 'mgd'])
def test_neck_distill_loss_aligns_and_normalises(name):
    torch.manual_seed(0)
    cs, ct = [2, 3], [4, 5]
    module = NeckDistillLoss(cs, ct, loss=name, loss_weight=0.7)
    fs = _feats(6, [(3, 2, 4, 4), (3, 3, 2, 2)])
    ft = _feats(7, [(3, 4, 4, 4), (3, 5, 2, 2)])
    ps, pt = [], []
    for lvl, (s, t) in enumerate(zip(fs, ft)):
        conv = module.align_module[lvl]
        assert conv.kernel_size == (1, 1) and conv.bias is not None
        aligned = torch.einsum('nchw,oc->nohw', s,
                               conv.weight[:, :, 0, 0]) + \
            conv.bias.view(1, -1, 1, 1)
        ps.append(_bn(aligned).detach())
        pt.append(_bn(t))
    # batch statistics in both train and eval mode, no running buffers
    for mode in (True, False):
        module.train(mode)
        got_s, got_t = module.align_and_norm(fs, ft)
        for a, b in zip(got_s + got_t, ps + pt):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert not any('running' in k for k in module.state_dict())
    torch.manual_seed(1)
    got = module(fs, ft)
    torch.manual_seed(1)
    expected = 0.7 * module.feature_loss(ps, pt)
    assert got.item() == pytest.approx(expected.item(), rel=1e-4)


def test_level_count_mismatch_names_both_shapes():
    module = NeckDistillLoss([2, 3, 4], [4, 6, 8])
    fs = _feats(0, [(1, 2, 8, 8), (1, 3, 4, 4), (1, 4, 2, 2)])
    ft = _feats(1, [(1, 4, 8, 8), (1, 6, 4, 4)])
    with pytest.raises(ValueError) as err:
        module(fs, ft)
    msg = str(err.value)
    assert '(1, 2, 8, 8), (1, 3, 4, 4), (1, 4, 2, 2)' in msg
    assert '(1, 4, 8, 8), (1, 6, 4, 4)' in msg
    with pytest.raises(ValueError, match=r'\[2, 3\].*\[4, 6, 8\]'):
        NeckDistillLoss([2, 3], [4, 6, 8])


def test_spatial_mismatch_names_both_shapes():
    module = NeckDistillLoss([2, 3], [4, 6])
    fs = _feats(0, [(1, 2, 8, 8), (1, 3, 4, 4)])
    ft = _feats(1, [(1, 4, 8, 8), (1, 6, 2, 2)])
    with pytest.raises(ValueError) as err:
        module(fs, ft)
    msg = str(err.value)
    assert 'level 1' in msg
    assert '(1, 3, 4, 4)' in msg and '(1, 6, 2, 2)' in msg
    # wrong channel count of the teacher is reported the same way
    ft = _feats(1, [(1, 4, 8, 8), (1, 5, 4, 4)])
    with pytest.raises(ValueError, match=r'\(1, 5, 4, 4\).*expected 6'):
        module(fs, ft)


def test_raw_losses_check_shapes_and_names():
    s = [torch.zeros(1, 2, 3, 3)]
    t = [torch.zeros(1, 2, 3, 4)]
    for loss in (CWDLoss(), MimicLoss(), MGDLoss([2])):
        with pytest.raises(ValueError,
                           match=r'\(1, 2, 3, 3\).*\(1, 2, 3, 4\)'):
            loss(s, t)
    with pytest.raises(ValueError, match='unknown loss'):
        NeckDistillLoss([1], [1], loss='kd')
    with pytest.raises(ValueError, match='tau'):
        CWDLoss(tau=0.)


@pytest.mark.parametrize('name', ['cwd', 'mimic', 'mgd'])
def test_matches_official_feature_loss(name):
    """Same align weights, inputs and random masks as the official
    ``FeatureLoss`` (values from data/make_official_feature_loss.py)."""
    path = osp.join(osp.dirname(__file__), 'data', 'official_feature_loss.pt')
    ref = torch.load(path, weights_only=False)
    module = NeckDistillLoss(ref['student_channels'], ref['teacher_channels'],
                             loss=name)
    module.align_module.load_state_dict(ref[name]['align'])
    if name == 'mgd':
        for gen, state in zip(module.feature_loss.generation,
                              ref[name]['generation']):
            gen.load_state_dict(state)
    torch.manual_seed(ref['mask_seed'])
    got = module(ref['feats_s'], ref['feats_t'])
    assert got.item() == pytest.approx(ref[name]['loss'], rel=1e-6)
