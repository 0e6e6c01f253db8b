"""TensorRT 10 path: EfficientNMS ONNX on CPU; engines on a GPU only.

The ONNX checks run everywhere. Building FP16 engines and comparing them
with ONNX Runtime needs the ``tensorrt`` package (>= 10) and an NVIDIA GPU;
without them those tests skip saying what is missing.
"""
import os.path as osp

import numpy as np
import pytest
import torch
from deploy_helpers import (VARIANTS, add_nms_inputs_as_outputs,
                            build_fused_model, gpu_missing,
                            match_detections, reference_nms)

TRT_CFG = {
    'Ns': 'configs/deploy/detection_tensorrt-fp16_static-416x416_nano.py',
    'T': 'configs/deploy/detection_tensorrt-fp16_static-640x640.py',
}


@pytest.fixture(scope='module')
def ns_trt(deploy_mod, golden_dir, tmp_path_factory):
    model, cfg = build_fused_model('Ns', golden_dir)
    work = tmp_path_factory.mktemp('trt_onnx_ns')
    onnx_file = deploy_mod.export_onnx(
        TRT_CFG['Ns'], VARIANTS['Ns'][0], None, str(work), model=model,
        log=lambda m: None)
    return dict(model=model, cfg=cfg, onnx_file=onnx_file)


def test_efficient_nms_onnx(deploy_mod, ns_trt):
    """Opset 13 graph ending in EfficientNMS_TRT; onnx.checker passes."""
    import onnx
    model = onnx.load(ns_trt['onnx_file'])
    onnx.checker.check_model(model)
    opsets = {o.domain: o.version for o in model.opset_import}
    assert opsets[''] == 13 and opsets['TRT'] == 1
    nodes = [n for n in model.graph.node if n.op_type == 'EfficientNMS_TRT']
    assert len(nodes) == 1 and nodes[0].domain == 'TRT'
    assert model.graph.node[-1].op_type == 'EfficientNMS_TRT'
    assert list(nodes[0].output) == [o.name for o in model.graph.output]
    attrs = {a.name: onnx.helper.get_attribute_value(a)
             for a in nodes[0].attribute}
    tc = ns_trt['cfg'].model.test_cfg
    assert attrs['score_threshold'] == pytest.approx(tc.score_thr)
    assert attrs['iou_threshold'] == pytest.approx(tc.nms.iou_threshold)
    assert attrs['max_output_boxes'] == tc.max_per_img == 500
    assert attrs['box_coding'] == 0 and attrs['score_activation'] == 0
    assert attrs['background_class'] == -1
    assert attrs['plugin_version'] == b'1'
    outs = {
        o.name: (o.type.tensor_type.elem_type,
                 [d.dim_value for d in o.type.tensor_type.shape.dim])
        for o in model.graph.output
    }
    i32, f32 = onnx.TensorProto.INT32, onnx.TensorProto.FLOAT
    assert outs == {
        'num_dets': (i32, [1, 1]),
        'det_boxes': (f32, [1, 500, 4]),
        'det_scores': (f32, [1, 500]),
        'det_classes': (i32, [1, 500]),
    }
    inp = model.graph.input[0]
    assert inp.name == 'input' and [
        d.dim_value for d in inp.type.tensor_type.shape.dim
    ] == [1, 3, 416, 416]


def test_efficient_nms_inputs_equal_pytorch(deploy_mod, ns_trt, golden_dir,
                                            tmp_path):
    """Everything before the plugin runs in ONNX Runtime and equals the
    PyTorch boxes [1, N, 4] and scores [1, N, 80]."""
    import onnx
    model = onnx.load(ns_trt['onnx_file'])
    node = [n for n in model.graph.node if n.op_type == 'EfficientNMS_TRT'][0]
    boxes_name, scores_name = node.input
    model.graph.node.remove(node)
    del model.graph.output[:]
    for name in (boxes_name, scores_name):
        model.graph.output.append(onnx.helper.make_tensor_value_info(
            name, onnx.TensorProto.FLOAT, None))
    cut = str(tmp_path / 'before_nms.onnx')
    onnx.save(model, cut)
    x = torch.load(osp.join(golden_dir, 'Ns_golden.pt'),
                   weights_only=True)['input']
    boxes, scores = deploy_mod.ort_session(cut, 2).run(
        None, {'input': x.numpy()})
    assert boxes.shape == (1, 3549, 4) and scores.shape == (1, 3549, 80)
    net = ns_trt['model']
    with torch.no_grad():
        s, b = net.bbox_head.predict_raw(net.extract_feat(x))
    assert np.abs(boxes - b.numpy()).max() <= 1e-3
    assert np.abs(scores - s.numpy()).max() <= 1e-4


def test_efficient_nms_reference_forward(deploy_mod):
    """The eager op follows the plugin's rules (checked against the
    reference NMS, below and above the 4096-candidate cap)."""
    gen = torch.Generator().manual_seed(0)
    n, c = 3000, 4
    xy = torch.rand(1, n, 2, generator=gen) * 300
    wh = torch.rand(1, n, 2, generator=gen) * 60 + 4
    boxes = torch.cat([xy, xy + wh], -1)
    scores = torch.rand(1, n, c, generator=gen)
    for thr in (0.9, 0.3):  # ~1200 and ~8400 candidates
        num, db, ds, dc = deploy_mod.EfficientNMSOp.apply(
            boxes, scores, 0.6, thr, 300)
        cand = scores[0][scores[0] > thr]
        cap = torch.sort(cand, descending=True)[0][
            deploy_mod.EFFICIENT_NMS_MAX_CANDIDATES - 1] if \
            cand.numel() > deploy_mod.EFFICIENT_NMS_MAX_CANDIDATES else 0.
        sc = scores[0].clone()
        sc[sc < cap] = 0
        ref = reference_nms(boxes[0].numpy(), sc.numpy(), thr, 0.6, 300)
        k = int(num[0, 0])
        assert k == len(ref['scores']) == 300
        got = dict(bboxes=db[0, :k].numpy(), scores=ds[0, :k].numpy(),
                   labels=dc[0, :k].numpy())
        un_a, un_b, _, _ = match_detections(got, ref, 1e-5, 1e-6)
        assert not un_a and not un_b
        assert (ds[0, k:] == 0).all()


@pytest.mark.parametrize('variant', ['Ns', 'T'])
def test_tensorrt_fp16_engine_matches_onnxruntime(deploy_mod, golden_dir,
                                                  tmp_path, variant):
    """Build the FP16 engine and compare it with ONNX Runtime (GPU only)."""
    missing = gpu_missing()
    if missing:
        pytest.skip(f'TensorRT engine test needs {missing}')
    deploy_mod.check_tensorrt(fp16=True)
    model, cfg = build_fused_model(variant, golden_dir)
    x = torch.load(osp.join(golden_dir, f'{variant}_golden.pt'),
                   weights_only=True)['input']
    dcfg, mcfg = deploy_mod.load_configs(TRT_CFG[variant], VARIANTS[variant][0])
    onnx_file = deploy_mod.export_onnx(dcfg, mcfg, None, str(tmp_path / 'trt'),
                                       model=model, log=print)
    engine = deploy_mod.build_trt_engine(dcfg, onnx_file,
                                         str(tmp_path / 'trt'), log=print)
    out = deploy_mod.TRTRunner(engine)(x.cuda())
    k = int(out['num_dets'][0, 0])
    trt = dict(bboxes=out['det_boxes'][0, :k].float().cpu().numpy(),
               scores=out['det_scores'][0, :k].float().cpu().numpy(),
               labels=out['det_classes'][0, :k].cpu().numpy())
    # ONNX Runtime reference (FP32, full NMS)
    ort_file = deploy_mod.export_onnx(
        VARIANTS[variant][1], VARIANTS[variant][0], None,
        str(tmp_path / 'ort'), inputs=x, model=model, log=print)
    probe = str(tmp_path / 'ort' / 'probe.onnx')
    add_nms_inputs_as_outputs(ort_file, probe)
    dets, labels, _, nms_scores = deploy_mod.ort_session(probe).run(
        None, {'input': x.numpy()})
    keep = dets[0][:, 4] > 0
    ort = dict(bboxes=dets[0][keep, :4], scores=dets[0][keep, 4],
               labels=labels[0][keep])
    # the plugin only considers the best 4096 (box, class) candidates:
    # compare the detections scoring clearly above that cut
    cand = np.sort(nms_scores[0][nms_scores[0] > cfg.model.test_cfg.score_thr])
    cut = cand[-deploy_mod.EFFICIENT_NMS_MAX_CANDIDATES] if len(cand) > \
        deploy_mod.EFFICIENT_NMS_MAX_CANDIDATES else 0.
    sel = ort['scores'] > cut + 5e-3
    ort_top = {k_: v[sel] for k_, v in ort.items()}
    assert len(ort_top['scores']) > 0
    un_a, _, db, ds = match_detections(ort_top, trt, 2.0, 5e-3)
    # FP16 rounding flips some near-ties; most detections must agree
    assert len(un_a) <= 0.1 * len(ort_top['scores']), (len(un_a), db, ds)


def test_efficient_nms_onnx_dynamic_batch(deploy_mod, ns_trt, tmp_path):
    import onnx
    out = deploy_mod.export_trt_onnx(
        ns_trt['model'], str(tmp_path / 'dyn.onnx'), (416, 416),
        ns_trt['cfg'].model.test_cfg, batch_size=2, dynamic_batch=True)
    model = onnx.load(out)
    dims = {
        v.name: [d.dim_param or d.dim_value
                 for d in v.type.tensor_type.shape.dim]
        for v in list(model.graph.input) + list(model.graph.output)
    }
    assert dims['input'] == ['batch', 3, 416, 416]
    assert dims['det_boxes'] == ['batch', 500, 4]
    assert dims['num_dets'] == ['batch', 1]
    with pytest.raises(ValueError, match='multiple of 32'):
        deploy_mod.export_trt_onnx(ns_trt['model'], str(tmp_path / 'x.onnx'),
                                   (416, 420), ns_trt['cfg'].model.test_cfg)
    with pytest.raises(KeyError, match='max_per_img'):
        deploy_mod.export_trt_onnx(ns_trt['model'], str(tmp_path / 'y.onnx'),
                                   (416, 416), dict(score_thr=0.1,
                                                    nms=dict(iou_threshold=.5)))
