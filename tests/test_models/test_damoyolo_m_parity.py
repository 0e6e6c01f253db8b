"""Tensor parity of DAMO-YOLO-M (TinyNAS CSP backbone) with the official
golden: the only numeric reference of the CSP backbone (M and L).

``../shared/golden/M_golden.pt`` is stripped to ``meta``, ``input``, ``raw``
(class probabilities and decoded boxes at 640x640) and ``dets`` (post-NMS);
the official weights are in ``M_ckpt_fp16.pth``. Checked: raw outputs,
the config's NMS on the golden raw outputs, our post-NMS detections, and the
deploy form (RepConv re-parameterised + conv-BN folded) against both the
golden and our unfused outputs.
"""
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config

from detection_judge import assert_same_detections
from numerics import threads, within

from damoyolo_mm.converters import convert_official_state_dict
from damoyolo_mm.variants import variant_config

# measured (fp32 CPU; native, AVX2 and default kernels, 1 and 2 threads):
# class scores <= 3.9e-6 (AVX2; native 5.4e-7), boxes <= 6.1e-4 px (AVX2;
# native 1.8e-4 px), deploy form the same; tolerances 1.5-3x the AVX2
# worst, ~10x the native one
CLS_ATOL = 6e-6
BOX_ATOL = 1.8e-3


@pytest.fixture(scope='module')
def m_parity(golden_dir):
    n = torch.get_num_threads()
    torch.set_num_threads(threads(1))
    try:
        ckpt = torch.load(osp.join(golden_dir, 'M_ckpt_fp16.pth'),
                          weights_only=True)
        golden = torch.load(osp.join(golden_dir, 'M_golden.pt'),
                            weights_only=True)
        model = MODELS.build(Config.fromfile(variant_config('M')).model)
        model.load_state_dict(
            convert_official_state_dict(ckpt['model'], model.state_dict()),
            strict=True)
        model.eval()
        x = golden['input']
        with torch.no_grad():
            scores, boxes = model.bbox_head.predict_raw(model.extract_feat(x))
            dets = model.bbox_head.postprocess_single(scores[0], boxes[0])
            model.switch_to_deploy()
            # the folding is checked in the golden's layout (NCHW): the
            # channels-last weights switch_to_deploy() leaves for inference
            # are checked against NCHW in test_channels_last_inference.py
            model.to(memory_format=torch.contiguous_format)
            fused = model.bbox_head.predict_raw(model.extract_feat(x))
    finally:
        torch.set_num_threads(n)
    return dict(model=model, golden=golden, scores=scores, boxes=boxes,
                dets=dets, fused=fused)


def _max_diff(a, b):
    return float((a - b).abs().max())


def test_golden_is_the_csp_variant(m_parity):
    meta = m_parity['golden']['meta']
    assert meta['variant'] == 'M'
    assert tuple(meta['input_hw']) == (640, 640)
    assert type(m_parity['model'].backbone).__name__ == 'TinyNASCSP'
    # the scores are spread (not saturated), so small errors show
    s = m_parity['golden']['raw']['cls_scores']
    assert 0.01 < float(s.std()) and float((s > 0.999).float().mean()) < 0.01


def test_raw_outputs(m_parity):
    raw = m_parity['golden']['raw']
    assert m_parity['scores'].shape == raw['cls_scores'].shape == (1, 8400,
                                                                     80)
    assert m_parity['boxes'].shape == raw['bbox_preds'].shape
    within('golden M: class scores',
           _max_diff(m_parity['scores'], raw['cls_scores']), CLS_ATOL)
    within('golden M: boxes (px)',
           _max_diff(m_parity['boxes'], raw['bbox_preds']), BOX_ATOL)


def test_config_nms_on_golden_raw(m_parity):
    """The config's test_cfg on the golden raw outputs gives exactly the
    golden detections."""
    g = m_parity['golden']
    head = m_parity['model'].bbox_head
    assert head.test_cfg['score_thr'] == g['meta']['nms_conf_thre']
    assert head.test_cfg['nms']['iou_threshold'] == g['meta']['nms_iou_thre']
    dets = head.postprocess_single(g['raw']['cls_scores'][0],
                                   g['raw']['bbox_preds'][0])
    assert torch.equal(dets.labels, g['dets']['labels'])
    assert torch.equal(dets.scores, g['dets']['scores'])
    assert torch.equal(dets.bboxes, g['dets']['bboxes'])


# The golden has near-ties (two priors of class 23 whose scores differ by
# 4e-8, below the float noise of ~5e-7, and whose boxes overlap), so which
# of them survives NMS, and what it suppresses further down, is not
# determined by the raw outputs; tests/detection_judge.py leaves out
# exactly the detections whose presence the raw outputs (ours and the
# golden's) do not determine. Measured share of determined detections
# (native, AVX2 and default kernels, 1 and 2 threads): 0.174 to 0.998, the
# least under AVX2, whose class scores differ from the golden's by 3.8e-6;
# the bound is ~2/3 of the worst. Every detection must be a raw output of
# its side. The NMS itself is checked exactly by
# test_config_nms_on_golden_raw.
MIN_DETERMINED = 0.1


def _check_detections(m_parity, dets, scores, boxes, what):
    g = m_parity['golden']
    assert len(g['dets']['scores']) == len(dets.scores) == 500
    assert_same_detections(
        dets, g['dets'], [(boxes[0], scores[0]),
                          (g['raw']['bbox_preds'][0],
                           g['raw']['cls_scores'][0])],
        m_parity['model'].bbox_head.test_cfg, CLS_ATOL, BOX_ATOL,
        MIN_DETERMINED, name=f'golden M {what}')


def test_post_nms_detections(m_parity):
    _check_detections(m_parity, m_parity['dets'], m_parity['scores'],
                      m_parity['boxes'], 'post-NMS')


def test_fused_equals_unfused(m_parity):
    model = m_parity['model']
    assert model.deploy
    assert not any(isinstance(m, torch.nn.BatchNorm2d)
                   for m in model.modules())
    reps = [m for m in model.modules() if type(m).__name__ == 'RepConv']
    assert reps and all(hasattr(m, 'rbr_reparam') for m in reps)
    scores, boxes = m_parity['fused']
    raw = m_parity['golden']['raw']
    for ref_s, ref_b in ((m_parity['scores'], m_parity['boxes']),
                         (raw['cls_scores'], raw['bbox_preds'])):
        within('golden M: fused class scores', _max_diff(scores, ref_s),
               CLS_ATOL)
        within('golden M: fused boxes (px)', _max_diff(boxes, ref_b),
               BOX_ATOL)
    dets = model.bbox_head.postprocess_single(scores[0], boxes[0])
    _check_detections(m_parity, dets, scores, boxes, 'fused post-NMS')
