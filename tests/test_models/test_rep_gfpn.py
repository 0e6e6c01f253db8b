"""RepGFPN neck: depth rounding, wiring, channel checks, block types."""
import pytest
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmdet.registry import MODELS

from damoyolo_mm.models.layers import (MobileInvertedBlock, RepConv,
                                       RepGFPNBasicBlock)
from damoyolo_mm.models.necks import RepGFPN

pytestmark = pytest.mark.usefixtures('single_thread')


def _feats(channels, size=32, batch=1):
    return [torch.rand(batch, c, size >> i, size >> i)
            for i, c in enumerate(channels)]


@pytest.mark.parametrize('depth,blocks', [(0.5, 2), (1.0, 3), (1.5, 4),
                                          (2.0, 6), (0.33, 1)])
def test_depth_rounding(depth, blocks):
    # Python's round: round(1.5) == 2, round(4.5) == 4 (banker's rounding)
    neck = RepGFPN([8, 16, 32], [8, 16, 32], depth=depth)
    assert neck.num_blocks == blocks == round(3 * depth)
    for node in list(neck.td_blocks) + list(neck.bu_blocks):
        assert len(node.blocks) == blocks
    assert round(3 * 1.5) == 4


def test_official_layout_channels_t():
    neck = MODELS.build(
        dict(type='RepGFPN', in_channels=[96, 192, 384],
             out_channels=[64, 128, 256], depth=1.0, hidden_ratio=1.0))
    # fusion node input / output widths of the official graph
    ins = [n.short_conv.conv.in_channels for n in neck.td_blocks]
    outs = [n.final_conv.conv.out_channels for n in neck.td_blocks]
    assert ins == [96 + 192, 96 + 192 + 384, 192 + 384]
    assert outs == [64, 192, 384]
    ins = [n.short_conv.conv.in_channels for n in neck.bu_blocks]
    outs = [n.final_conv.conv.out_channels for n in neck.bu_blocks]
    assert ins == [64 + 192, 384 + 192 + 128]
    assert outs == [128, 256]
    blk = neck.td_blocks[0].blocks[0]
    assert isinstance(blk, RepGFPNBasicBlock)
    assert isinstance(blk.rep_conv, RepConv)
    assert blk.rep_conv.out_channels == 32  # int(32 * hidden_ratio 1.0)
    assert isinstance(neck.td_downsamples[0], ConvModule)
    assert neck.td_downsamples[0].conv.stride == (2, 2)
    neck.eval()
    with torch.no_grad():
        outs = neck(_feats([96, 192, 384]))
    assert [tuple(o.shape) for o in outs] == [(1, 64, 32, 32),
                                              (1, 128, 16, 16),
                                              (1, 256, 8, 8)]


def test_hidden_ratio():
    neck = RepGFPN([128, 256, 512], [128, 256, 512], hidden_ratio=0.75)
    assert neck.td_blocks[0].blocks[0].rep_conv.out_channels == 48


def test_mobile_block_type():
    neck = RepGFPN([40, 80, 160], [40, 80, 160], depth=0.5,
                   hidden_ratio=0.5, block_type='mobile',
                   act_cfg=dict(type='SiLU'))
    blk = neck.td_blocks[1].blocks[0]
    assert isinstance(blk, MobileInvertedBlock)
    assert blk.mid_channels == 120  # 40 * 3.0, hidden_ratio unused
    assert blk.depthwise.conv.kernel_size == (5, 5)
    assert all(isinstance(d, DepthwiseSeparableConvModule)
               for d in list(neck.td_downsamples) +
               list(neck.bu_downsamples) + [neck.bu_skip_downsample])
    assert not any(isinstance(m, RepConv) for m in neck.modules())
    neck.eval()
    with torch.no_grad():
        outs = neck(_feats([40, 80, 160], batch=2))
    assert [o.shape[1] for o in outs] == [40, 80, 160]
    assert all(o.shape[0] == 2 for o in outs)


def test_channel_mismatch_names_both_lists():
    neck = RepGFPN([96, 192, 384], [64, 128, 256])
    with pytest.raises(ValueError) as e:
        neck(_feats([96, 192, 512]))
    msg = str(e.value)
    assert 'expected in_channels [96, 192, 384]' in msg
    assert '[96, 192, 512]' in msg
    with pytest.raises(ValueError, match=r'\[96, 192\]'):
        neck(_feats([96, 192]))


def test_bad_construction():
    with pytest.raises(ValueError, match='>= 3 levels'):
        RepGFPN([8, 16], [8, 16])
    with pytest.raises(ValueError, match='out_channels'):
        RepGFPN([8, 16, 32], [8, 16])
    with pytest.raises(ValueError, match='block_type'):
        RepGFPN([8, 16, 32], [8, 16, 32], block_type='csp')
    with pytest.raises(ValueError, match='depth'):
        RepGFPN([8, 16, 32], [8, 16, 32], depth=0.1)


def test_four_levels():
    neck = RepGFPN([8, 16, 32, 64], [8, 16, 24, 40], depth=0.33).eval()
    assert len(neck.td_blocks) == 4 and len(neck.bu_blocks) == 3
    with torch.no_grad():
        outs = neck(_feats([8, 16, 32, 64], size=64))
    assert [tuple(o.shape[1:]) for o in outs] == [(8, 64, 64), (16, 32, 32),
                                                  (24, 16, 16), (40, 8, 8)]


def test_outputs_depend_on_every_level():
    torch.manual_seed(0)
    neck = RepGFPN([8, 16, 32], [8, 16, 32], depth=0.33,
                   act_cfg=dict(type='SiLU')).eval()
    feats = _feats([8, 16, 32])
    with torch.no_grad():
        ref = neck(feats)
        for lvl in range(3):
            changed = [f.clone() for f in feats]
            changed[lvl] += 1.0
            outs = neck(changed)
            # every output level sees every input level
            assert all((a - b).abs().max() > 1e-4 for a, b in zip(outs, ref))


def test_bn_settings():
    neck = RepGFPN([8, 16, 32], [8, 16, 32])
    bns = [m for m in neck.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(b.eps == 1e-3 and b.momentum == 0.03 for b in bns)
