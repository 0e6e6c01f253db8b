"""TinyNAS backbones: structure specs, shapes, options, RepConv."""
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmdet.registry import MODELS
from model_helpers import randomize_bn

from damoyolo_mm.models.backbones import (TinyNASCSP, TinyNASMob, TinyNASRes,
                                          list_structures, load_structure)
from damoyolo_mm.models.backbones.structure import STRUCTURE_DIR
from damoyolo_mm.models.layers import RepConv

pytestmark = pytest.mark.usefixtures('single_thread')


T_SPEC = [
    dict({'class': 'ConvKXBNRELU'}, **{'in': 3, 'out': 24, 'k': 3, 's': 1}),
    dict({'class': 'SuperResConvK1KX'},
         **{'in': 24, 'out': 64, 'btn': 24, 'k': 3, 's': 2, 'L': 2}),
    dict({'class': 'SuperResConvK1KX'},
         **{'in': 64, 'out': 96, 'btn': 64, 'k': 3, 's': 2, 'L': 2}),
    dict({'class': 'SuperResConvK1KX'},
         **{'in': 96, 'out': 192, 'btn': 96, 'k': 3, 's': 2, 'L': 2}),
    dict({'class': 'SuperResConvK1KX'},
         **{'in': 192, 'out': 192, 'btn': 152, 'k': 3, 's': 1, 'L': 2}),
    dict({'class': 'SuperResConvK1KX'},
         **{'in': 192, 'out': 384, 'btn': 192, 'k': 3, 's': 2, 'L': 1}),
]


def test_shipped_structures():
    assert list_structures() == sorted([
        'tinynas_L20_k1kx', 'tinynas_L20_k1kx_nano', 'tinynas_L25_k1kx',
        'tinynas_L35_kxkx', 'tinynas_L45_kxkx', 'tinynas_nano_large',
        'tinynas_nano_middle', 'tinynas_nano_small'
    ])
    # by name, by name with suffix, by path and inline give the same spec
    by_name = load_structure('tinynas_L20_k1kx')
    assert by_name == T_SPEC
    assert load_structure('tinynas_L20_k1kx.txt') == T_SPEC
    assert load_structure(osp.join(STRUCTURE_DIR,
                                   'tinynas_L20_k1kx.txt')) == T_SPEC
    assert load_structure(T_SPEC) == T_SPEC
    # a few values of the other specs
    s = load_structure('tinynas_L25_k1kx')
    assert [(d['btn'], d['L']) for d in s[1:]] == [(24, 1), (88, 5),
                                                    (128, 3), (120, 2),
                                                    (144, 1)]
    m = load_structure('tinynas_L35_kxkx')
    assert {d['class'] for d in m[1:]} == {'SuperResConvKXKX'}
    lg = load_structure('tinynas_L45_kxkx')
    assert [d['L'] for d in lg[1:]] == [3, 5, 5, 5, 4]
    nl = load_structure('tinynas_nano_large')
    assert [d['out'] for d in nl] == [24, 48, 80, 160, 160, 320]


def test_ignored_keys_and_file(tmp_path):
    spec = [dict(d, nbitsA=8, nbitsW=8, inner_class='ResConvK1KX')
            for d in T_SPEC]
    assert load_structure(spec) == T_SPEC
    path = tmp_path / 'my_structure.txt'
    path.write_text('# comment\n' + repr(spec))
    assert load_structure(str(path)) == T_SPEC
    bad = tmp_path / 'bad.txt'
    bad.write_text('[{"class": ')
    with pytest.raises(ValueError, match='bad.txt'):
        load_structure(str(bad))
    with pytest.raises(FileNotFoundError, match='tinynas_unknown'):
        load_structure('tinynas_unknown')


def _spec(idx, **changes):
    spec = [dict(d) for d in T_SPEC]
    for k, v in changes.items():
        if v is None:
            del spec[idx][k]
        else:
            spec[idx][k] = v
    return spec


@pytest.mark.parametrize('changes,pattern', [
    ((2, {'class': 'SuperResConvK7'}), r"stage 2 key 'class'.*SuperResConvK7"),
    ((3, {'btn': None}), r"stage 3 .*misses key 'btn'"),
    ((0, {'k': None}), r"stage 0 .*misses key 'k'"),
    ((4, {'in': 100}), r"stage 4 key 'in' = 100 .*stage 3 key 'out' = 192"),
    ((1, {'L': 0}), r"stage 1 key 'L' must be a positive int"),
    ((5, {'s': 3}), r"stage 5 key 's' must be 1 or 2"),
    ((0, {'class': 'SuperResConvK1KX'}), r"stage 0 key 'class'"),
])
def test_bad_structure(changes, pattern):
    idx, change = changes
    spec = _spec(idx, **change)
    for cls in (TinyNASRes, TinyNASCSP, TinyNASMob):
        with pytest.raises(ValueError, match=pattern):
            cls(structure=spec)


def test_bad_structure_type_and_out_indices():
    with pytest.raises(ValueError, match='stage 1 must be a dict'):
        TinyNASRes(structure=[T_SPEC[0], ['not', 'a', 'dict']])
    with pytest.raises(ValueError, match='out_indices'):
        TinyNASRes(structure=T_SPEC, out_indices=(2, 6))
    with pytest.raises(ValueError, match="stage 1 key 's' = 1"):
        TinyNASCSP(structure=_spec(1, s=1))
    with pytest.raises(ValueError, match='expand_ratios'):
        TinyNASMob(structure='tinynas_nano_small', expand_ratios=[3.0])


# name: (class, cfg, expected out_channels at strides 8, 16, 32)
BACKBONES = {
    'T': (TinyNASRes, dict(structure='tinynas_L20_k1kx'), [96, 192, 384]),
    'S': (TinyNASRes, dict(structure='tinynas_L25_k1kx'), [128, 256, 512]),
    'M': (TinyNASCSP, dict(structure='tinynas_L35_kxkx'), [128, 256, 512]),
    'L': (TinyNASCSP, dict(structure='tinynas_L45_kxkx'), [128, 256, 512]),
    'Ns': (TinyNASMob, dict(structure='tinynas_nano_small'), [40, 80, 160]),
    'Nm': (TinyNASMob, dict(structure='tinynas_nano_middle'),
           [64, 128, 256]),
    'Nl': (TinyNASMob, dict(structure='tinynas_nano_large'),
           [80, 160, 320]),
    'N': (TinyNASMob, dict(structure='tinynas_L20_k1kx_nano',
                           use_focus=True), [80, 112, 160]),
}


@pytest.mark.parametrize('name', list(BACKBONES))
def test_backbone_shapes(name):
    cls, cfg, channels = BACKBONES[name]
    model = MODELS.build(dict(type=cls.__name__, **cfg)).eval()
    assert isinstance(model, cls)
    assert model.out_channels == channels
    x = torch.rand(1, 3, 64, 96) * 255
    with torch.no_grad():
        outs = model(x)
    assert isinstance(outs, tuple) and len(outs) == 3
    for o, c, s in zip(outs, channels, (8, 16, 32)):
        assert o.shape == (1, c, 64 // s, 96 // s)
        assert torch.isfinite(o).all()


def test_csp_grouping_and_activations():
    m = TinyNASCSP(structure='tinynas_L35_kxkx')
    assert m.stage_groups == [[1], [2], [3, 4], [5]]
    assert m.layers == ['stem', 'stage1', 'stage2', 'stage3', 'stage4']
    # 3 + 4 residual blocks in the merged stage, SPP only in the last one
    assert len(m.stage3.blocks) == 3 + 4
    assert m.stage4.spp is not None and m.stage3.spp is None
    # transition convs use ReLU, blocks SiLU, SPP SiLU (DAMO-YOLO-M/L)
    assert isinstance(m.stage1.downsample.activate, nn.ReLU)
    assert isinstance(m.stage1.final_conv.activate, nn.ReLU)
    assert isinstance(m.stage1.blocks[0].act, nn.SiLU)
    assert isinstance(m.stage4.spp.conv1.activate, nn.SiLU)
    assert isinstance(m.stem.conv.activate, nn.SiLU)


def test_res_blocks_and_spp():
    m = TinyNASRes(structure='tinynas_L20_k1kx')
    assert isinstance(m.stem.conv.activate, nn.ReLU)
    # SPP right after the first block of the last stage, SiLU inside
    assert type(m.stage5[1]).__name__ == 'DAMOSPPBottleneck'
    assert isinstance(m.stage5[1].conv1.activate, nn.SiLU)
    # projection shortcut only for stride-1 blocks changing the width
    assert m.stage1[0].shortcut_conv is None  # stride 2
    assert m.stage1[1].shortcut_conv is None  # same width
    assert isinstance(m.stage4[0].conv2, RepConv)
    plain = TinyNASRes(structure='tinynas_L20_k1kx', reparam=False,
                       with_spp=False)
    assert not any(isinstance(x, RepConv) for x in plain.modules())
    assert len(plain.stage5) == 1
    # without Focus, the stem keeps the spec stride (1): strides halve
    nofocus = TinyNASRes(structure='tinynas_L20_k1kx', use_focus=False)
    with torch.no_grad():
        outs = nofocus.eval()(torch.rand(1, 3, 64, 64))
    assert [o.shape[-1] for o in outs] == [16, 8, 4]


def test_mob_expansion_and_options():
    m = TinyNASMob(structure='tinynas_nano_small')
    # expanded width: make_divisible(ceil(out * (3.5 + 0.5 * (i - 1))))
    assert m.stage1[0].mid_channels == 88  # 24 * 3.5 = 84 -> 88
    assert m.stage2[0].mid_channels == 160  # 40 * 4.0
    assert m.stage5[0].mid_channels == 880  # 160 * 5.5
    assert m.stage2[1].use_shortcut and not m.stage2[0].use_shortcut
    assert m.stem.conv.stride == (2, 2)  # spec stride ignored for mob
    se = TinyNASMob(structure='tinynas_nano_small', use_se=True,
                    expand_ratios=[2.0] * 5)
    assert se.stage1[0].mid_channels == 48
    assert se.stage1[0].se is not None
    with torch.no_grad():
        assert se.eval()(torch.rand(1, 3, 64, 64))[0].shape == (1, 40, 8, 8)
    dense = TinyNASMob(structure='tinynas_nano_small', depthwise=False)
    assert dense.stage1[0].depthwise.conv.groups == 1
    assert m.stage1[0].depthwise.conv.groups == 88


def test_repconv_switch_to_deploy():
    torch.manual_seed(0)
    conv = randomize_bn(RepConv(8, 16, 3, stride=2,
                                act_cfg=dict(type='ReLU'))).eval()
    x = torch.randn(2, 8, 15, 17)
    with torch.no_grad():
        ref = conv(x)
        conv.switch_to_deploy()
        conv.switch_to_deploy()  # idempotent
        out = conv(x)
    assert conv.deploy and not hasattr(conv, 'rbr_dense')
    assert set(dict(conv.named_parameters())) == {'rbr_reparam.weight',
                                                  'rbr_reparam.bias'}
    assert ref.shape == out.shape == (2, 16, 8, 9)
    assert (ref - out).abs().max() < 1e-5
    built = RepConv(8, 16, deploy=True)
    assert built.deploy and hasattr(built, 'rbr_reparam')
    with pytest.raises(ValueError, match='kernel_size=3'):
        RepConv(8, 16, 5)


def test_backbone_reparam_equivalence():
    torch.manual_seed(0)
    m = randomize_bn(TinyNASCSP(structure='tinynas_L35_kxkx')).eval()
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        ref = m(x)
        for mod in m.modules():
            if isinstance(mod, RepConv):
                mod.switch_to_deploy()
        out = m(x)
    for a, b in zip(ref, out):
        assert (a - b).abs().max() <= 1e-4 * a.abs().max()


def test_frozen_stages_and_norm_eval():
    m = TinyNASRes(structure='tinynas_L20_k1kx', frozen_stages=1,
                   norm_eval=True)
    m.train()
    assert not any(p.requires_grad for p in m.stem.parameters())
    assert not any(p.requires_grad for p in m.stage1.parameters())
    assert all(p.requires_grad for p in m.stage2.parameters())
    assert all(not b.training for b in m.modules()
               if isinstance(b, nn.BatchNorm2d))


def test_bn_defaults():
    m = TinyNASMob(structure='tinynas_nano_small')
    bns = [b for b in m.modules() if isinstance(b, nn.BatchNorm2d)]
    assert bns and all(b.eps == 1e-3 and b.momentum == 0.03 for b in bns)


def test_stock_mmdet_neck_consumes_out_channels():
    bb = TinyNASRes(structure='tinynas_L20_k1kx').eval()
    fpn = MODELS.build(
        dict(type='FPN', in_channels=bb.out_channels, out_channels=16,
             num_outs=3)).eval()
    with torch.no_grad():
        outs = fpn(bb(torch.rand(1, 3, 64, 64)))
    assert [o.shape[1] for o in outs] == [16, 16, 16]
