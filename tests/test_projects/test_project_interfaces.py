"""The interfaces the projects rely on when our modules meet stock mmdet
parts: backbone ``out_channels`` per ``out_indices``, a neck that takes any
in-channel list / number of levels, and channel-mismatch errors that name
both channel lists."""
import re

import pytest
import torch
from mmengine.config import Config

from projects_helpers import COCO_CONFIGS


def _build(cfg):
    from mmdet.registry import MODELS
    return MODELS.build(cfg)


def test_stock_backbone_vs_repgfpn_mismatch_names_both_lists():
    """Swap the project's ResNet-18 for a ResNet-50 and forget the neck:
    the error says what RepGFPN expected and what it got."""
    cfg = Config.fromfile(COCO_CONFIGS['repgfpn_retinanet'])
    cfg.model.backbone.depth = 50
    model = _build(cfg.model).eval()
    with pytest.raises(ValueError) as err:
        with torch.no_grad():
            model.extract_feat(torch.rand(1, 3, 64, 64))
    msg = str(err.value)
    assert '[128, 256, 512]' in msg, msg  # the neck's in_channels
    assert '[512, 1024, 2048]' in msg, msg  # what ResNet-50 gives


@pytest.mark.parametrize('backbone,in_channels,out_channels', [
    # four levels, strides 4..32, from a stock ResNet-18
    (dict(type='ResNet', depth=18, out_indices=(0, 1, 2, 3)),
     [64, 128, 256, 512], [32, 48, 64, 96]),
    # three levels with uneven widths from a stock ResNet-18
    (dict(type='ResNet', depth=18, out_indices=(1, 2, 3)),
     [128, 256, 512], [64, 128, 256]),
    # five levels from our TinyNAS-Res (stem at stride 2 included)
    (dict(type='TinyNASRes', structure='tinynas_L20_k1kx',
          out_indices=(0, 1, 2, 4, 5)), [24, 64, 96, 192, 384],
     [16, 16, 16, 16, 16]),
])
def test_repgfpn_takes_any_channel_list_and_level_count(
        backbone, in_channels, out_channels):
    bb = _build(backbone)
    neck = _build(
        dict(type='RepGFPN', in_channels=in_channels,
             out_channels=out_channels, depth=0.33, hidden_ratio=0.5))
    bb.eval()
    neck.eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        feats = bb(x)
        assert [f.shape[1] for f in feats] == in_channels
        outs = neck(feats)
    assert [o.shape[1] for o in outs] == out_channels
    assert [o.shape[-2:] for o in outs] == [f.shape[-2:] for f in feats]


@pytest.mark.parametrize('backbone', [
    dict(type='TinyNASRes', structure='tinynas_L20_k1kx',
         out_indices=(1, 2, 4, 5)),
    dict(type='TinyNASRes', structure='tinynas_L20_k1kx',
         out_indices=(2, 4, 5)),
    dict(type='TinyNASCSP', structure='tinynas_L35_kxkx',
         out_indices=(1, 2, 3, 4)),
    dict(type='TinyNASMob', structure='tinynas_nano_small',
         out_indices=(1, 2, 4, 5)),
], ids=lambda b: f"{b['type']}{b['out_indices']}")
def test_tinynas_out_channels_feed_a_stock_fpn(backbone):
    bb = _build(backbone)
    bb.eval()
    assert len(bb.out_channels) == len(backbone['out_indices'])
    fpn = _build(
        dict(type='FPN', in_channels=bb.out_channels, out_channels=32,
             num_outs=len(bb.out_channels) + 1)).eval()
    with torch.no_grad():
        feats = bb(torch.rand(1, 3, 64, 64))
        assert [f.shape[1] for f in feats] == bb.out_channels
        outs = fpn(feats)
    assert all(o.shape[1] == 32 for o in outs)


def test_stock_neck_vs_zerohead_mismatch_names_both_lists():
    """FPN gives 256-channel maps; a ZeroHead set up for 128 must say so
    (naming its in_channels and the channels it got), not fail inside a
    convolution."""
    cfg = Config.fromfile(COCO_CONFIGS['zerohead_resnet'])
    cfg.model.bbox_head.in_channels = [128] * 5
    cfg.model.bbox_head.feat_channels = 128
    model = _build(cfg.model).eval()
    with pytest.raises(ValueError) as err:
        with torch.no_grad():
            model(torch.rand(1, 3, 64, 64), mode='tensor')
    msg = str(err.value)
    assert re.search(r'\[128, 128, 128, 128, 128\]', msg), msg
    assert re.search(r'\[256, 256, 256, 256, 256\]', msg), msg
