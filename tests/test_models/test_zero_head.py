"""ZeroHead: structure, init, golden decoding and post-processing."""
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

# (in_channels, reg_max, last_kernel_size) of the golden variants
VARIANTS = {
    'Ns': ((40, 80, 160), 7, 1),
    'Nm': ((64, 128, 256), 7, 1),
    'T': ((64, 128, 256), 16, 3),
}


def build_head(variant='T', **kwargs):
    in_channels, reg_max, kernel = VARIANTS[variant]
    cfg = dict(
        type='ZeroHead',
        num_classes=80,
        in_channels=list(in_channels),
        reg_max=reg_max,
        last_kernel_size=kernel)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def golden_test_cfg(meta):
    return ConfigDict(
        score_thr=meta['nms_conf_thre'],
        nms=dict(type='nms', iou_threshold=meta['nms_iou_thre']),
        max_per_img=meta['nms_max_per_img'],
        nms_pre=-1)


_CACHE = {}


def load_golden(golden_dir, variant):
    if variant not in _CACHE:
        _CACHE[variant] = torch.load(
            osp.join(golden_dir, f'{variant}_golden.pt'), weights_only=True)
    return _CACHE[variant]


def load_head_state(golden_dir, variant):
    ckpt = torch.load(
        osp.join(golden_dir, f'{variant}_ckpt_fp16.pth'), weights_only=True)
    return {
        k[len('head.'):]: (v.float() if v.is_floating_point() else v)
        for k, v in ckpt['model'].items() if k.startswith('head.')
    }


@pytest.mark.parametrize('variant', ['Ns', 'T'])
def test_state_dict_matches_official_layout(golden_dir, variant):
    head = build_head(variant)
    official = load_head_state(golden_dir, variant)
    ours = head.state_dict()
    assert set(ours) == set(official)
    for key, value in official.items():
        assert ours[key].shape == value.shape, key
    assert ours['scales.0.scale'].dim() == 0
    missing = head.load_state_dict(official, strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys


def test_official_init():
    torch.manual_seed(0)
    head = build_head('T')
    head.init_weights()
    for lvl in range(3):
        bias = head.gfl_cls[lvl].bias
        assert torch.allclose(bias, torch.full_like(bias, -4.59512), atol=1e-4)
        assert head.gfl_reg[lvl].bias.abs().max() == 0
        for conv in (head.gfl_cls[lvl], head.gfl_reg[lvl]):
            std = conv.weight.std().item()
            assert 0.009 < std < 0.011
        assert head.scales[lvl].scale.item() == 1.0
    assert torch.equal(head.integral.project, torch.arange(17.))


def test_stacked_convs_tower():
    head = build_head('Ns', stacked_convs=2, feat_channels=32)
    keys = head.state_dict().keys()
    assert 'cls_convs.0.0.conv.weight' in keys
    assert 'reg_convs.2.1.bn.running_var' in keys
    assert head.cls_convs[0][0].conv.kernel_size == (1, 1)
    assert head.cls_convs[0][1].conv.kernel_size == (3, 3)
    assert head.cls_convs[0][0].bn.eps == pytest.approx(1e-3)
    assert head.gfl_cls[1].in_channels == 32
    feats = [torch.rand(1, c, 8 // 2**i, 8 // 2**i) for i, c in
             enumerate(VARIANTS['Ns'][0])]
    cls_scores, bbox_preds = head(feats)
    assert cls_scores[0].shape == (1, 80, 8, 8)
    assert bbox_preds[2].shape == (1, 32, 2, 2)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match='one entry per level'):
        build_head('T', in_channels=[64, 128])
    head = build_head('T')
    with pytest.raises(ValueError, match='4 \\* \\(reg_max \\+ 1\\)'):
        head.decode_outputs([torch.zeros(1, 80, 2, 2)] * 3,
                            [torch.zeros(1, 32, 2, 2)] * 3)


@pytest.mark.parametrize('variant', ['Ns', 'Nm', 'T'])
def test_forward_on_golden_neck_features(golden_dir, variant):
    """Head convs + scales on the golden neck outputs give the golden
    per-level logits."""
    golden = load_golden(golden_dir, variant)
    head = build_head(variant)
    head.load_state_dict(load_head_state(golden_dir, variant))
    head.eval()
    with torch.no_grad():
        cls_scores, bbox_preds = head(golden['features']['neck'])
    for lvl in range(3):
        ref_cls = golden['levels']['cls_logits'][lvl]
        ref_reg = golden['levels']['reg_logits'][lvl]
        assert cls_scores[lvl].shape == ref_cls.shape
        assert bbox_preds[lvl].shape == ref_reg.shape
        assert (cls_scores[lvl] - ref_cls).abs().max() < 1e-4
        assert (bbox_preds[lvl] - ref_reg).abs().max() < 1e-4


@pytest.mark.parametrize('variant', ['Ns', 'Nm', 'T'])
def test_golden_decode(golden_dir, variant):
    golden = load_golden(golden_dir, variant)
    head = build_head(variant)
    scores, bboxes = head.decode_outputs(golden['levels']['cls_logits'],
                                         golden['levels']['reg_logits'])
    ref_scores = golden['raw']['cls_scores']
    ref_bboxes = golden['raw']['bbox_preds']
    assert scores.shape == ref_scores.shape
    assert bboxes.shape == ref_bboxes.shape
    assert (scores - ref_scores).abs().max() <= 1e-6
    assert (bboxes - ref_bboxes).abs().max() <= 1e-4


def test_priors_have_no_half_cell_offset():
    head = build_head('T')
    priors = head.get_priors([(2, 3), (1, 2), (1, 1)], torch.float32, 'cpu')
    expected_lvl0 = torch.tensor([[0., 0.], [8., 0.], [16., 0.], [0., 8.],
                                  [8., 8.], [16., 8.]])
    assert torch.equal(priors[:6, :2], expected_lvl0)
    assert torch.equal(priors[6:8, :2], torch.tensor([[0., 0.], [16., 0.]]))
    assert torch.equal(priors[:, 2], torch.tensor([8.] * 6 + [16.] * 2 +
                                                  [32.]))


def test_decode_by_hand():
    """One level, one cell: a one-hot distribution at known bins."""
    head = build_head('T', strides=(8, ), in_channels=[4])
    reg = torch.full((1, 4, 17, 1, 2), -1e4)
    reg[0, 0, 2, 0, 1] = 0.  # left 2 bins
    reg[0, 1, 3, 0, 1] = 0.  # top 3
    reg[0, 2, 1, 0, 1] = 0.  # right 1
    reg[0, 3, 0, 0, 1] = 0.  # bottom 0
    reg[0, :, 0, 0, 0] = 0.
    cls = torch.zeros(1, 80, 1, 2)
    cls[0, 5, 0, 1] = 2.
    scores, bboxes = head.decode_outputs([cls], [reg.reshape(1, 68, 1, 2)])
    assert torch.allclose(bboxes[0, 1], torch.tensor([8 - 16., -24., 16.,
                                                      0.]))
    assert torch.allclose(bboxes[0, 0], torch.zeros(4))
    assert scores[0, 1, 5] == pytest.approx(torch.sigmoid(torch.tensor(2.)))


@pytest.mark.parametrize('variant', ['Ns', 'Nm', 'T'])
def test_golden_postprocess(golden_dir, variant):
    golden = load_golden(golden_dir, variant)
    head = build_head(variant)
    cfg = golden_test_cfg(golden['meta'])
    result = head.postprocess_single(golden['raw']['cls_scores'][0],
                                     golden['raw']['bbox_preds'][0], cfg=cfg)
    ref = golden['dets']
    assert len(result) == len(ref['labels']) == 500
    assert torch.equal(result.labels, ref['labels'])
    assert (result.bboxes - ref['bboxes']).abs().max() <= 1e-3
    assert (result.scores - ref['scores']).abs().max() <= 1e-5


def test_predict_by_feat_rescale_and_batch(golden_dir):
    golden = load_golden(golden_dir, 'T')
    head = build_head('T', test_cfg=golden_test_cfg(golden['meta']))
    cls = [torch.cat([c, c]) for c in golden['levels']['cls_logits']]
    reg = [torch.cat([r, r]) for r in golden['levels']['reg_logits']]
    metas = [dict(scale_factor=(1., 1.)), dict(scale_factor=(2., 0.5))]
    results = head.predict_by_feat(cls, reg, batch_img_metas=metas,
                                   rescale=True)
    assert len(results) == 2
    ref = golden['dets']
    assert torch.equal(results[0].labels, ref['labels'])
    assert (results[0].bboxes - ref['bboxes']).abs().max() <= 1e-3
    scale = torch.tensor([2., 0.5, 2., 0.5])
    assert torch.allclose(results[1].bboxes, results[0].bboxes / scale)
    assert torch.equal(results[1].labels, results[0].labels)


def test_predict_empty_and_without_nms():
    head = build_head('Ns')
    cls = [torch.full((1, 80, s, s), -10.) for s in (4, 2, 1)]
    reg = [torch.zeros(1, 32, s, s) for s in (4, 2, 1)]
    results = head.predict_by_feat(cls, reg, batch_img_metas=[{}])
    assert len(results[0]) == 0
    assert results[0].bboxes.shape == (0, 4)
    # two candidates of one prior, kept as they are without NMS
    cls[0][0, 3, 1, 2] = 1.
    cls[0][0, 7, 1, 2] = 2.
    res = head.predict_by_feat(cls, reg, batch_img_metas=[{}],
                               with_nms=False)[0]
    assert res.labels.tolist() == [7, 3]
    # uniform bins: expectation 3.5 strides per side, prior (16, 8)
    assert torch.allclose(res.bboxes[0], torch.tensor([-12., -20., 44.,
                                                       36.]))
    res = head.predict_by_feat(cls, reg, batch_img_metas=[{}])[0]
    assert res.labels.tolist() == [7, 3]  # class-wise NMS keeps both
    assert isinstance(res, InstanceData)
