"""ONNX Runtime (CPU) end-to-end export against PyTorch on the goldens.

For Ns (416) and T (640) the fused model with the golden weights is
exported once per session (MMDeploy + the ZeroHead rewriter, NMS in the
graph) and checked three ways:

1. the tensors entering the graph's NonMaxSuppression (decoded boxes and
   class probabilities) equal PyTorch's within 1.2e-3 px / 1e-5 (measured
   1.2e-4 px / 9.2e-7, also against the official fused model);
2. the graph's NMS *is* the PyTorch NMS: run on the same boxes/scores, the
   exported detections and the head's post-processing both equal one
   reference NMS (class-wise greedy, score > thr, IoU > thr suppresses,
   500 per image) detection for detection (boxes 1e-3, scores 1e-4);
3. end to end, the ONNX Runtime detections equal the PyTorch detections.
   The golden weights are random: Ns has many near-identical neighbouring
   boxes whose scores differ by < 1e-6, so float rounding (~5e-7) can flip
   which of two is kept; T matches completely, Ns 98 %.
"""
import os.path as osp

import numpy as np
import pytest
import torch
from deploy_helpers import (VARIANTS, add_nms_inputs_as_outputs,
                            build_fused_model, match_detections,
                            reference_nms)

BOX_TOL, SCORE_TOL = 1e-3, 1e-4
# the raw tensors before NMS: ~10x the measured 1.2e-4 px / 9.2e-7
RAW_BOX_TOL, RAW_SCORE_TOL = 1.2e-3, 1e-5
# least fraction of matched end-to-end detections (see the module doc)
MIN_E2E_MATCH = {'Ns': 0.97, 'T': 1.0}


@pytest.fixture(scope='module', params=['Ns', 'T'])
def exported(request, deploy_mod, golden_dir, tmp_path_factory):
    variant = request.param
    torch.set_num_threads(2)
    model, cfg = build_fused_model(variant, golden_dir)
    golden = torch.load(
        osp.join(golden_dir, f'{variant}_golden.pt'), weights_only=True)
    x = golden['input']
    work = tmp_path_factory.mktemp(f'ort_{variant}')
    model_cfg, deploy_cfg = VARIANTS[variant]
    onnx_file = deploy_mod.export_onnx(
        deploy_cfg, model_cfg, None, str(work), inputs=x, model=model,
        log=lambda m: None)
    probe = str(work / 'with_nms_inputs.onnx')
    add_nms_inputs_as_outputs(onnx_file, probe)
    sess = deploy_mod.ort_session(probe, threads=2)
    dets, labels, nms_boxes, nms_scores = sess.run(None,
                                                   {'input': x.numpy()})
    keep = dets[0][:, 4] > 0
    ort = dict(bboxes=dets[0][keep, :4], scores=dets[0][keep, 4],
               labels=labels[0][keep])
    with torch.no_grad():
        pt_scores, pt_boxes = model.bbox_head.predict_raw(
            model.extract_feat(x))
        pt = model.bbox_head.predict_by_feat(
            *model.bbox_head(model.extract_feat(x)),
            batch_img_metas=[dict(img_shape=tuple(x.shape[-2:]))])[0]
    return dict(
        variant=variant, cfg=cfg, golden=golden, onnx_file=onnx_file,
        ort=ort, dets=dets, labels=labels, nms_boxes=nms_boxes[0],
        nms_scores=nms_scores[0].T, pt_boxes=pt_boxes[0].numpy(),
        pt_scores=pt_scores[0].numpy(),
        pt=dict(bboxes=pt.bboxes.numpy(), scores=pt.scores.numpy(),
                labels=pt.labels.numpy()))


def test_graph_structure(exported):
    import onnx
    model = onnx.load(exported['onnx_file'])
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count('NonMaxSuppression') == 1
    assert [o.name for o in model.graph.output] == ['dets', 'labels']
    assert [i.name for i in model.graph.input] == ['input']
    # fused: no BatchNormalization left, RepConv collapsed (one conv each)
    assert 'BatchNormalization' not in ops
    assert exported['dets'].shape == (1, 500, 5)
    assert exported['labels'].shape == (1, 500)


def test_nms_inputs_equal_pytorch(exported):
    g = exported['golden']
    n, c = exported['pt_scores'].shape
    assert exported['nms_boxes'].shape == (n, 4)
    assert exported['nms_scores'].shape == (n, c)
    db = np.abs(exported['nms_boxes'] - exported['pt_boxes']).max()
    ds = np.abs(exported['nms_scores'] - exported['pt_scores']).max()
    assert db <= RAW_BOX_TOL and ds <= RAW_SCORE_TOL, (db, ds)
    # and the official fused model's outputs (golden)
    ref = g['deploy']['reparam_fused']
    db = np.abs(exported['nms_boxes'] - ref['bbox_preds'][0].numpy()).max()
    ds = np.abs(exported['nms_scores'] -
                ref['cls_scores'][0].numpy()).max()
    assert db <= RAW_BOX_TOL and ds <= RAW_SCORE_TOL, (db, ds)


def test_graph_nms_is_pytorch_nms(exported):
    tc = exported['cfg'].model.test_cfg
    args = (tc.score_thr, tc.nms.iou_threshold, tc.max_per_img)
    # exported NMS on its own inputs == reference NMS
    ref_ort = reference_nms(exported['nms_boxes'], exported['nms_scores'],
                            *args, max_per_class=500)
    un_a, un_b, db, ds = match_detections(exported['ort'], ref_ort,
                                          BOX_TOL, SCORE_TOL)
    assert len(exported['ort']['scores']) == len(ref_ort['scores']) == 500
    assert not un_a and not un_b, (un_a, un_b)
    # PyTorch post-processing on its inputs == the same reference NMS
    ref_pt = reference_nms(exported['pt_boxes'], exported['pt_scores'],
                           *args, max_per_class=500)
    un_a, un_b, _, _ = match_detections(exported['pt'], ref_pt, BOX_TOL,
                                        SCORE_TOL)
    assert not un_a and not un_b, (un_a, un_b)


def test_end_to_end_detections_equal_pytorch(exported):
    ort, pt = exported['ort'], exported['pt']
    assert len(ort['scores']) == len(pt['scores'])
    un_a, un_b, db, ds = match_detections(ort, pt, BOX_TOL, SCORE_TOL)
    matched = 1 - len(un_a) / len(ort['scores'])
    assert matched >= MIN_E2E_MATCH[exported['variant']], (matched, un_a)
    assert db <= BOX_TOL and ds <= SCORE_TOL
    # sorted by score like the PyTorch output
    assert np.all(np.diff(ort['scores']) <= 0)
    # the highest-scoring detections are never affected by the near-ties
    np.testing.assert_allclose(ort['scores'][:20], pt['scores'][:20],
                               atol=SCORE_TOL)


def test_dynamic_shape_export(deploy_mod, golden_dir, tmp_path):
    """Dynamic config: traced at 416, run on a batch of two 320x384 images."""
    model, cfg = build_fused_model('Ns', golden_dir)
    onnx_file = deploy_mod.export_onnx(
        'configs/deploy/detection_onnxruntime_dynamic_nano.py',
        'configs/damoyolo_ns_coco.py', None, str(tmp_path),
        inputs=torch.zeros(1, 3, 416, 416), model=model, log=lambda m: None)
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (2, 3, 320, 384), generator=gen).float()
    sess = deploy_mod.ort_session(onnx_file, threads=2)
    dets = deploy_mod.ort_detections(sess, x)
    with torch.no_grad():
        pts = model.bbox_head.predict_by_feat(
            *model.bbox_head(model.extract_feat(x)),
            batch_img_metas=[dict(img_shape=(320, 384))] * 2)
    for d, p in zip(dets, pts):
        p = dict(bboxes=p.bboxes.numpy(), scores=p.scores.numpy(),
                 labels=p.labels.numpy())
        assert len(d['scores']) == len(p['scores']) > 0
        un_a, _, db, ds = match_detections(d, p, BOX_TOL, SCORE_TOL)
        assert len(un_a) <= 0.03 * len(d['scores']), un_a
        assert db <= BOX_TOL and ds <= SCORE_TOL
