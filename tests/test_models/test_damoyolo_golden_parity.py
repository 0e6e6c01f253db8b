"""Tensor parity with the official DAMO-YOLO goldens (Ns, Nm, T).

The official checkpoints are converted with the package's key mapping and
run on the stored golden input; backbone / neck features, raw decoded
outputs, post-NMS detections and the deploy (re-parameterised + conv-BN
folded) form are compared with what the official code produced.
"""
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config

from detection_judge import assert_same_detections
from numerics import within

from damoyolo_mm.converters import convert_official_state_dict
from damoyolo_mm.variants import variant_config

# ~10x the measured errors (see below); features: FEAT_ATOL + FEAT_RTOL x
# the level's largest magnitude (T's first backbone level reaches 20.9)
FEAT_ATOL = 2e-5
FEAT_RTOL = 1e-5
CLS_ATOL = 1e-5
BOX_ATOL = 1.2e-3

pytestmark = pytest.mark.usefixtures('single_thread')


# Measured (fp32 CPU; native, AVX2 and default kernels, 1 and 2 threads):
# backbone / neck features <= 1.8e-6 (T's first backbone level, magnitude
# 20.9: 1.9e-5), class scores <= 1.1e-6, boxes <= 1.5e-4 px, fused form
# the same; with 2 threads and AVX-512 the features and scores are
# bit-identical to the goldens.


def _feat_tol(ref):
    return FEAT_ATOL + FEAT_RTOL * float(ref.abs().max())


def _load(golden_dir, variant):
    ckpt = torch.load(
        osp.join(golden_dir, f'{variant}_ckpt_fp16.pth'), weights_only=True)
    golden = torch.load(
        osp.join(golden_dir, f'{variant}_golden.pt'), weights_only=True)
    cfg = Config.fromfile(variant_config(variant))
    model = MODELS.build(cfg.model)
    model.load_state_dict(
        convert_official_state_dict(ckpt['model'], model.state_dict()),
        strict=True)
    return model.eval(), golden


def _run(model, x):
    with torch.no_grad():
        feats = model.backbone(x)
        neck = model.neck(feats)
        scores, boxes = model.bbox_head.predict_raw(neck)
    return feats, neck, scores, boxes


@pytest.fixture(scope='module', params=['Ns', 'Nm', 'T'])
def parity(request, golden_dir):
    variant = request.param
    model, golden = _load(golden_dir, variant)
    x = golden['input']
    out = _run(model, x)
    dets = model.bbox_head.postprocess_single(out[2][0], out[3][0])
    model.switch_to_deploy()
    fused = _run(model, x)
    return dict(variant=variant, model=model, golden=golden, out=out,
                dets=dets, fused=fused)


def _max_diff(a, b):
    return float((a - b).abs().max())


def test_backbone_and_neck_features(parity):
    g = parity['golden']['features']
    feats, neck = parity['out'][:2]
    assert len(feats) == len(g['backbone']) == 3
    v = parity['variant']
    for i, (ours, ref) in enumerate(zip(feats, g['backbone'])):
        assert ours.shape == ref.shape
        within(f'golden {v}: backbone level {i} features',
               _max_diff(ours, ref), _feat_tol(ref))
    for i, (ours, ref) in enumerate(zip(neck, g['neck'])):
        assert ours.shape == ref.shape
        within(f'golden {v}: neck level {i} features', _max_diff(ours, ref),
               _feat_tol(ref))


def test_raw_outputs(parity):
    raw = parity['golden']['raw']
    scores, boxes = parity['out'][2:]
    assert scores.shape == raw['cls_scores'].shape
    assert boxes.shape == raw['bbox_preds'].shape
    v = parity['variant']
    within(f'golden {v}: class scores', _max_diff(scores, raw['cls_scores']),
           CLS_ATOL)
    within(f'golden {v}: boxes (px)', _max_diff(boxes, raw['bbox_preds']),
           BOX_ATOL)


# Least share of the 500 detections whose presence the raw outputs determine
# (tests/detection_judge.py), ~2/3 of the worst measured (native, AVX2 and
# default kernels, 1 and 2 threads; tools/misc/cpu_matrix.py): Ns 0.094,
# Nm 0.368, T 0.996. With two threads and AVX-512 ours equal the goldens
# bit for bit and 0.998 is determined; otherwise the near-ties of the nano
# goldens (below) leave most of their detections to float rounding. Every
# detection, determined or not, must be a raw output of its side.
MIN_DETERMINED = dict(Ns=0.06, Nm=0.25, T=0.99)


def _check_detections(parity, dets, scores, boxes, what):
    """Our post-NMS detections against the golden ones: every detection
    whose presence is determined by the raw outputs (both sides, within
    CLS_ATOL / BOX_ATOL) has a partner (label, box within BOX_ATOL, score
    within CLS_ATOL) on the other side.

    The nano goldens are ill-conditioned for NMS: groups of stride-32
    priors differ in score by only ~1e-6 (their deepest features are nearly
    input independent), the size of float-rounding noise, so which of two
    overlapping boxes survives NMS, and what it suppresses further down, is
    not determined; the judge leaves exactly those out. The NMS itself is
    checked exactly by :func:`test_config_nms_on_golden_raw`.
    """
    g, variant = parity['golden'], parity['variant']
    assert len(dets.scores) == len(g['dets']['scores']) == 500
    assert_same_detections(
        dets, g['dets'], [(boxes[0], scores[0]),
                          (g['raw']['bbox_preds'][0],
                           g['raw']['cls_scores'][0])],
        parity['model'].bbox_head.test_cfg, CLS_ATOL, BOX_ATOL,
        MIN_DETERMINED[variant], name=f'golden {variant} {what}')


def test_config_nms_on_golden_raw(parity):
    """The config's test_cfg (score_thr, IoU threshold, 500 cap) applied
    to the golden raw outputs gives exactly the golden detections."""
    g = parity['golden']
    head = parity['model'].bbox_head
    dets = head.postprocess_single(g['raw']['cls_scores'][0],
                                   g['raw']['bbox_preds'][0])
    assert head.test_cfg['score_thr'] == g['meta']['nms_conf_thre']
    assert head.test_cfg['nms']['iou_threshold'] == g['meta'][
        'nms_iou_thre']
    assert torch.equal(dets.labels, g['dets']['labels'])
    torch.testing.assert_close(dets.scores, g['dets']['scores'], atol=0,
                               rtol=0)
    assert torch.equal(dets.bboxes, g['dets']['bboxes'])


def test_post_nms_detections(parity):
    assert parity['golden']['meta']['nms_max_per_img'] == 500
    _check_detections(parity, parity['dets'], *parity['out'][2:],
                      'post-NMS')


def test_fused_equals_unfused(parity):
    model = parity['model']
    assert model.deploy
    assert not any(isinstance(m, torch.nn.BatchNorm2d)
                   for m in model.modules())
    if parity['variant'] == 'T':
        assert all(hasattr(m, 'rbr_reparam') for m in model.modules()
                   if type(m).__name__ == 'RepConv')
    g = parity['golden']
    feats, neck, scores, boxes = parity['fused']
    v = parity['variant']
    for i, (ours, ref) in enumerate(zip(neck, g['features']['neck'])):
        within(f'golden {v}: fused neck level {i} features',
               _max_diff(ours, ref), 10 * _feat_tol(ref))
    for ref in (g['raw'], g['deploy']['reparam_fused']):
        within(f'golden {v}: fused class scores',
               _max_diff(scores, ref['cls_scores']), CLS_ATOL)
        within(f'golden {v}: fused boxes (px)',
               _max_diff(boxes, ref['bbox_preds']), BOX_ATOL)
    dets = model.bbox_head.postprocess_single(scores[0], boxes[0])
    _check_detections(parity, dets, scores, boxes, 'fused post-NMS')
