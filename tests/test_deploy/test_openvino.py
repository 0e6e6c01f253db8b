"""OpenVINO (FP32 IR) end-to-end export against PyTorch on the goldens.

The end-to-end ONNX (MMDeploy export, NMS in the graph) is converted to an
IR with the current OpenVINO API (``damoyolo_mm.deploy.openvino``, which
replaces MMDeploy 1.3.1's ``mo`` / ``IECore`` code) and run on the golden
input: the decoded boxes and class probabilities entering the NMS equal
PyTorch's (1e-3 px / 1e-4), and so do the end-to-end detections (the same
near-tie caveat as ONNX Runtime for the random-weight Ns, see
test_onnxruntime.py). MMDeploy's backend manager builds our wrapper.
"""
import os.path as osp

import numpy as np
import pytest
import torch
from deploy_helpers import (REPO, VARIANTS, add_nms_inputs_as_outputs,
                            build_fused_model)
from detection_judge import assert_same_detections
from numerics import threads, within

# raw tensors before NMS; measured (native, AVX2 and default kernels, 1 and
# 2 threads): 1.2e-4 px / 7.8e-7
BOX_TOL, SCORE_TOL = 1e-3, 1e-4
# least share of determined detections, ~2/3 of the worst measured (native,
# AVX2 and default kernels, 1 and 2 threads): Ns 0.134, T 0.996
MIN_DETERMINED = {'Ns': 0.08, 'T': 0.99}
OV_CFG = {
    'Ns': 'configs/deploy/detection_openvino_static-416x416_nano.py',
    'T': 'configs/deploy/detection_openvino_static-640x640.py'
}


@pytest.fixture(scope='session')
def ov(deploy_mod):
    return pytest.importorskip('openvino', reason='openvino is not '
                               'installed (pip install "damoyolo_mm[deploy]")')


@pytest.fixture(scope='module', params=['Ns', 'T'])
def exported(request, deploy_mod, ov, golden_dir, tmp_path_factory):
    variant = request.param
    torch.set_num_threads(threads(2))
    model, cfg = build_fused_model(variant, golden_dir)
    x = torch.load(osp.join(golden_dir, f'{variant}_golden.pt'),
                   weights_only=True)['input']
    work = tmp_path_factory.mktemp(f'ov_{variant}')
    deploy_cfg, _ = deploy_mod.load_configs(
        osp.join(REPO, OV_CFG[variant]), osp.join(REPO, VARIANTS[variant][0]))
    onnx_file = deploy_mod.export_onnx(deploy_cfg, VARIANTS[variant][0], None,
                                       str(work), inputs=x, model=model,
                                       log=lambda m: None)
    xml = deploy_mod.onnx2openvino(onnx_file, str(work),
                                   deploy_mod.input_shapes_from_cfg(deploy_cfg))
    probe = str(work / 'probe.onnx')
    add_nms_inputs_as_outputs(onnx_file, probe)
    probe_xml = deploy_mod.onnx2openvino(probe, str(work / 'probe'))
    raw = deploy_mod.ov_run(deploy_mod.ov_compile(probe_xml, threads=2),
                            x.numpy())
    ovd = deploy_mod.ov_detections(deploy_mod.ov_compile(xml, threads=2),
                                   x)[0]
    with torch.no_grad():
        pt_scores, pt_boxes = model.bbox_head.predict_raw(
            model.extract_feat(x))
        pt = model.bbox_head.predict_by_feat(
            *model.bbox_head(model.extract_feat(x)),
            batch_img_metas=[dict(img_shape=tuple(x.shape[-2:]))])[0]
    return dict(variant=variant, xml=xml, work=work, x=x, raw=raw, ov=ovd,
                test_cfg=cfg.model.test_cfg,
                pt_boxes=pt_boxes[0].numpy(), pt_scores=pt_scores[0].numpy(),
                pt=dict(bboxes=pt.bboxes.numpy(), scores=pt.scores.numpy(),
                        labels=pt.labels.numpy()))


def test_ir_files(exported, ov):
    xml = exported['xml']
    assert osp.basename(xml) == 'end2end.xml'
    assert osp.isfile(xml[:-4] + '.bin')
    # no temporary file left behind
    assert not [f for f in (exported['work']).iterdir()
                if f.name.startswith('.')]
    m = ov.Core().read_model(xml)
    assert [sorted(o.get_names())[0] for o in m.outputs] == ['dets', 'labels']
    assert list(m.inputs[0].get_partial_shape().to_shape()) == list(
        exported['x'].shape)
    # FP32 weights (not compressed to FP16)
    consts = [op for op in m.get_ops() if op.get_type_name() == 'Constant']
    assert not any(str(c.get_element_type()) == '<Type: \'float16\'>'
                   for c in consts)


def _ov_raw(exported):
    """The OpenVINO boxes (N, 4) and scores (N, C) entering the NMS."""
    raw = exported['raw']
    boxes = [v for k, v in raw.items() if v.ndim == 3 and v.shape[-1] == 4
             and k not in ('dets', )]
    scores = [v for k, v in raw.items() if v.ndim == 3 and k not in (
        'dets', ) and v.shape[-1] != 4]
    assert len(boxes) == 1 and len(scores) == 1, list(raw)
    return boxes[0][0], scores[0][0].T


def test_nms_inputs_equal_pytorch(exported):
    boxes, scores = _ov_raw(exported)
    v = exported['variant']
    within(f'OpenVINO {v}: boxes entering NMS (px)',
           np.abs(boxes - exported['pt_boxes']).max(), BOX_TOL)
    within(f'OpenVINO {v}: scores entering NMS',
           np.abs(scores - exported['pt_scores']).max(), SCORE_TOL)


def test_end_to_end_detections_equal_pytorch(exported):
    """Every detection that the raw outputs determine has its partner
    (tests/detection_judge.py)."""
    ovd, pt = exported['ov'], exported['pt']
    assert len(ovd['scores']) == len(pt['scores']) == 500
    v = exported['variant']
    assert_same_detections(
        ovd, pt, [_ov_raw(exported),
                  (exported['pt_boxes'], exported['pt_scores'])],
        exported['test_cfg'], SCORE_TOL, BOX_TOL, MIN_DETERMINED[v],
        name=f'OpenVINO {v} end to end')


def test_mmdeploy_backend_manager_uses_current_api(exported, deploy_mod):
    from mmdeploy.backend.base import get_backend_manager
    wrapper = get_backend_manager('openvino').build_wrapper(
        [exported['xml']], output_names=['dets', 'labels'])
    assert isinstance(wrapper, deploy_mod.OpenVINOWrapper)
    out = wrapper({'input': exported['x']})
    dets = out['dets'][0].numpy()
    keep = dets[:, 4] > 0
    np.testing.assert_allclose(dets[keep][:20, 4], exported['ov']['scores'][:20])


def test_missing_openvino_is_a_clear_error(deploy_mod, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, 'openvino', None)
    with pytest.raises(ImportError, match='pip install'):
        deploy_mod.check_backend_available('openvino')
    with pytest.raises(ImportError, match='openvino'):
        deploy_mod.check_backend_available('openvino', precision='int8')


@pytest.mark.parametrize('exported', ['Ns'], indirect=True)
def test_benchmark_runners_cut_at_nms(exported):
    """The latency rows of tools/benchmark_latency.py (network + decoding
    of the end-to-end export, ONNX Runtime and OpenVINO) compute PyTorch's
    decoded boxes and scores (one variant is enough)."""
    from damoyolo_mm.benchmark.engines import cut_at_nms, engine_runners
    work = exported['work']
    e2e = str(work / 'end2end.onnx')
    fns = engine_runners({'FP32': e2e}, ['onnxruntime', 'openvino'],
                         exported['x'].numpy(), str(work / 'bench'), 2,
                         log=lambda m: None)
    assert set(fns) == {'ours ORT FP32 (net + decode)',
                        'ours OpenVINO FP32 (net + decode)'}
    boxes, scores = fns['ours ORT FP32 (net + decode)']()
    assert np.abs(boxes[0] - exported['pt_boxes']).max() <= BOX_TOL
    assert np.abs(scores[0].T - exported['pt_scores']).max() <= SCORE_TOL
    ov_out = list(fns['ours OpenVINO FP32 (net + decode)']().values())
    assert len(ov_out) == 2
    with pytest.raises(ValueError, match='NonMaxSuppression'):
        cut_at_nms(str(work / 'bench' / 'end2end_FP32_raw.onnx'),
                   str(work / 'x.onnx'))
