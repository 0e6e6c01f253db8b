"""Folding conv + BatchNorm into one convolution (RepConv re-parameterisation).

The BN statistics here are chosen so that every term of the fold matters:
running variances of the order of ``eps`` (so using any other eps than the
layer's own changes the result by tens of percent), non-zero means and
biases, and outputs compared before any activation or sigmoid (nothing
saturates).
"""
import pytest
import torch
from torch import nn

from damoyolo_mm.models.layers import RepConv, fuse_conv_bn_tensors

# measured max relative error of the folded form (fp32): ~3e-7
REL_TOL = 1e-5


def _small_var_bn(bn: nn.BatchNorm2d, gen: torch.Generator) -> nn.BatchNorm2d:
    c = bn.num_features
    bn.weight.data = 1 + 0.3 * torch.randn(c, generator=gen)
    bn.bias.data = 0.3 * torch.randn(c, generator=gen)
    bn.running_mean = 0.2 * torch.randn(c, generator=gen)
    # of the order of eps: the fold is sensitive to the eps it uses
    bn.running_var = bn.eps * (0.5 + 4 * torch.rand(c, generator=gen))
    return bn


def _rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize('eps', [1e-3, 1e-5, 0.05])
@pytest.mark.parametrize('with_bias', [False, True])
def test_fuse_conv_bn_tensors_uses_the_layer_eps(eps, with_bias):
    gen = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(6, 10, 3, padding=1, bias=with_bias)
    nn.init.normal_(conv.weight, std=0.02, generator=gen)
    if with_bias:
        nn.init.normal_(conv.bias, std=0.05, generator=gen)
    bn = _small_var_bn(nn.BatchNorm2d(10, eps=eps), gen).eval()
    x = torch.randn(2, 6, 9, 11, generator=gen)
    with torch.no_grad():
        ref = bn(conv(x))
        w, b = fuse_conv_bn_tensors(conv, bn)
        out = nn.functional.conv2d(x, w, b, padding=1)
    assert ref.abs().max() > 0.5  # not a degenerate output
    assert _rel_err(out, ref) < REL_TOL
    # a BN already folded (Identity) or absent: the conv's own parameters
    for folded in (None, nn.Identity()):
        w2, b2 = fuse_conv_bn_tensors(conv, folded)
        assert w2 is conv.weight
        assert torch.equal(b2, conv.bias if with_bias else torch.zeros(10))


def test_repconv_fold_with_small_variances():
    """RepConv.switch_to_deploy on the 3x3 + 1x1 branches, BN eps 1e-3 as
    in every DAMO-YOLO config, output compared before the activation."""
    gen = torch.Generator().manual_seed(1)
    conv = RepConv(8, 12, 3, stride=1, act_cfg=None)
    for m in conv.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, std=0.05, generator=gen)
        elif isinstance(m, nn.BatchNorm2d):
            assert m.eps == 1e-3
            _small_var_bn(m, gen)
    conv.eval()
    x = torch.randn(2, 8, 13, 7, generator=gen)
    with torch.no_grad():
        ref = conv(x)
        conv.switch_to_deploy()
        out = conv(x)
    assert conv.deploy
    assert ref.abs().max() > 0.5
    assert _rel_err(out, ref) < REL_TOL
