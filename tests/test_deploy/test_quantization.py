"""INT8 partial quantization (damoyolo_mm/deploy/quantization.py).

On the quickstart-trained Ns (``quickstart_ns_epoch55.pth``, 224 px) and the
demo dataset of the quickstart (160 train / 40 val images, seed 0):

* the INT8 ``end2end.onnx`` keeps the end-to-end contract (``input``
  1x3xHxW, ``dets`` 1xNx5, ``labels`` 1xN, the same NMS) and holds
  QuantizeLinear / DequantizeLinear nodes;
* calibrated on the *train* split (``--calib-dataset-cfg``), evaluated with
  CocoMetric on the val split through MMDeploy's task processor: partial
  INT8 loses at most 0.01 bbox mAP against FP32 ONNX Runtime (which equals
  the PyTorch figure of the quickstart, 0.469);
* bad input gives clear errors and leaves no complete-looking file.
"""
import copy
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from deploy_helpers import REPO, gpu_missing
from mmengine.config import Config
from numerics import threads

QS_CFG = osp.join(REPO, 'configs/quickstart/damoyolo_quickstart.py')
INT8_CFG = osp.join(
    REPO, 'configs/deploy/detection_onnxruntime-int8_static-416x416_nano.py')
FP32_CFG = osp.join(
    REPO, 'configs/deploy/detection_onnxruntime_static-416x416_nano.py')
TRT_INT8_CFG = osp.join(
    REPO, 'configs/deploy/detection_tensorrt-int8_static-416x416_nano.py')
MAX_MAP_DROP = 0.01
LIGHT = dict(num_images=16, sensitivity_images=4)


@pytest.fixture(scope='module')
def qs(deploy_mod, golden_dir, tmp_path_factory):
    """Quickstart model config on a fresh copy of the demo data, its
    checkpoint, a calibration config on the train split, 224 px deploy
    configs."""
    ckpt = osp.join(golden_dir, 'quickstart_ns_epoch55.pth')
    if not osp.isfile(ckpt):
        pytest.skip(f'{ckpt} not found')
    from damoyolo_mm.datasets import generate_demo_dataset
    root = str(tmp_path_factory.mktemp('demo')) + '/'
    generate_demo_dataset(root)  # the quickstart's data: 160 / 40 images
    model_cfg = Config.fromfile(QS_CFG)
    for key in ('val_dataloader', 'test_dataloader'):
        model_cfg[key].dataset.data_root = root
    for key in ('val_evaluator', 'test_evaluator'):
        model_cfg[key].ann_file = root + 'annotations/instances_val.json'
    calib_cfg = Config(dict(val_dataloader=copy.deepcopy(
        model_cfg.val_dataloader)))
    calib_cfg.val_dataloader.dataset.ann_file = \
        'annotations/instances_train.json'
    calib_cfg.val_dataloader.dataset.data_prefix = dict(img='train/')

    def deploy_cfg(path, **calib):
        cfg = Config.fromfile(path)
        cfg.onnx_config.input_shape = [224, 224]
        if calib:
            cfg.calib_config.update(calib)
        return cfg

    return dict(root=root, ckpt=ckpt, model_cfg=model_cfg,
                calib_cfg=calib_cfg, deploy_cfg=deploy_cfg)


@pytest.fixture(scope='module')
def int8(qs, deploy_mod, tmp_path_factory):
    work = str(tmp_path_factory.mktemp('int8'))
    torch.set_num_threads(threads(2))
    logs = []
    # fewer images than the config's 32 / 8 to keep the test short
    onnx_file, report = deploy_mod.export_int8(
        qs['deploy_cfg'](INT8_CFG, **LIGHT), qs['model_cfg'], qs['ckpt'],
        work, calib_dataset_cfg=qs['calib_cfg'], log=logs.append)
    return dict(work=work, onnx=onnx_file, report=report, logs=logs)


def test_int8_keeps_end_to_end_contract(int8):
    import onnx
    q = onnx.load(int8['onnx'])
    f = onnx.load(osp.join(int8['work'], 'end2end_fp32.onnx'))
    io = [[(v.name, [d.dim_value for d in v.type.tensor_type.shape.dim])
           for v in vs] for vs in (q.graph.input, q.graph.output)]
    io_f = [[(v.name, [d.dim_value for d in v.type.tensor_type.shape.dim])
             for v in vs] for vs in (f.graph.input, f.graph.output)]
    assert io == io_f
    assert io[0] == [('input', [1, 3, 224, 224])]
    assert [n for n, _ in io[1]] == ['dets', 'labels']
    ops = [n.op_type for n in q.graph.node]
    assert ops.count('NonMaxSuppression') == 1
    r = int8['report']
    assert r['qdq']['quantized_conv'] == len(r['layers']) - len(
        r['keep_float']) > 0.7 * len(r['layers'])
    assert ops.count('DequantizeLinear') >= r['qdq']['quantized_conv']
    # NMS settings identical to the FP32 export (test_cfg of the model)
    def consts(m):
        init = {i.name: onnx.numpy_helper.to_array(i).tolist()
                for i in m.graph.initializer if i.name}
        nms = [n for n in m.graph.node if n.op_type == 'NonMaxSuppression'][0]
        return [init.get(i) for i in nms.input[2:]]
    assert consts(q) == consts(f)
    # the report on disk, ranking most sensitive first
    rep = json.load(open(osp.join(int8['work'], 'quantization.json')))
    sens = list(rep['sensitivity'].values())
    assert sens == sorted(sens, reverse=True) and len(sens) == len(
        rep['layers'])
    assert rep['keep_float'] == list(rep['sensitivity'])[:len(
        rep['keep_float'])]
    assert rep['partial_error'] < rep['full_int8_error']
    # no temporary folder left behind
    assert not [n for n in os.listdir(int8['work']) if n.startswith('.')]


def test_partial_int8_map_within_001_of_fp32(qs, int8, deploy_mod,
                                              tmp_path):
    """The Must-show accuracy check (40 val images, CocoMetric)."""
    from damoyolo_mm.deploy.evaluate import evaluate_deployed
    from damoyolo_mm.deploy.quantization import quantize_onnx
    fp32 = evaluate_deployed(qs['deploy_cfg'](FP32_CFG), qs['model_cfg'],
                             osp.join(int8['work'], 'end2end_fp32.onnx'))
    q = evaluate_deployed(qs['deploy_cfg'](INT8_CFG), qs['model_cfg'],
                          int8['onnx'])
    # full INT8 (no float layer) for comparison, same calibration
    cfg = deploy_mod.get_calib_config(
        qs['deploy_cfg'](INT8_CFG, keep_float=0, **LIGHT))
    from damoyolo_mm.deploy.quantization import (build_calib_dataset,
                                                 calib_inputs)
    ds = build_calib_dataset(qs['model_cfg'], qs['calib_cfg'])
    inputs = calib_inputs(ds, qs['deploy_cfg'](INT8_CFG), qs['model_cfg'],
                          cfg['num_images'])
    full_file = str(tmp_path / 'full.onnx')
    quantize_onnx(osp.join(int8['work'], 'end2end_fp32.onnx'), full_file,
                  inputs, cfg, log=lambda m: None)
    full = evaluate_deployed(qs['deploy_cfg'](INT8_CFG), qs['model_cfg'],
                             full_file)
    key = 'coco/bbox_mAP'
    print(f'\nquickstart Ns @224, demo val: FP32 ORT {fp32[key]:.3f}, '
          f'partial INT8 {q[key]:.3f} ({len(int8["report"]["keep_float"])} '
          f'convs float: {int8["report"]["keep_float"]}), full INT8 '
          f'{full[key]:.3f}')
    assert abs(fp32[key] - 0.469) <= 0.01  # = PyTorch (quickstart figure)
    assert q[key] >= fp32[key] - MAX_MAP_DROP, (fp32[key], q[key])


def test_tools_deploy_and_test_deployed_openvino_int8(qs, tmp_path,
                                                     capsys, load_tool):
    """tools/deploy.py with an openvino-int8 config (full INT8 here: no
    sensitivity analysis, to stay short), then tools/test_deployed.py on
    the IR."""
    pytest.importorskip('openvino')
    cfg = tmp_path / 'int8.py'
    cfg.write_text(
        "_base_ = ['" + osp.join(REPO, 'configs/deploy/'
                                 'detection_openvino-int8_static-416x416_'
                                 'nano.py') + "']\n"
        'onnx_config = dict(input_shape=[224, 224])\n'
        'backend_config = dict(model_inputs=[dict(opt_shapes=dict('
        'input=[1, 3, 224, 224]))])\n'
        'calib_config = dict(num_images=4, sensitivity_images=1, '
        'keep_float=0)\n')
    model_cfg = tmp_path / 'qs.py'
    qs['model_cfg'].dump(str(model_cfg))
    calib_cfg = tmp_path / 'calib.py'
    qs['calib_cfg'].dump(str(calib_cfg))
    work = tmp_path / 'w'
    load_tool('deploy').main([
        str(cfg), str(model_cfg), qs['ckpt'], '--work-dir', str(work),
        '--calib-dataset-cfg', str(calib_cfg)])
    log = capsys.readouterr().out
    assert 'calibrating (MinMax, 4 images)' in log
    for f in ('end2end.onnx', 'end2end_fp32.onnx', 'end2end.xml',
              'end2end.bin', 'quantization.json'):
        assert osp.isfile(work / f), f
    metrics = load_tool('test_deployed').main([
        str(cfg), str(model_cfg), '--model', str(work / 'end2end.xml')])
    assert 0.2 < metrics['coco/bbox_mAP'] <= 1


# ----------------------------------------------------------------------
# TensorRT: the same partial quantization, symmetric, before the NMS plugin
# ----------------------------------------------------------------------
@pytest.fixture(scope='module')
def trt_int8(qs, deploy_mod, tmp_path_factory):
    work = str(tmp_path_factory.mktemp('trt_int8'))
    cfg = qs['deploy_cfg'](TRT_INT8_CFG, **LIGHT)
    for k in ('min_shape', 'opt_shape', 'max_shape'):
        cfg.backend_config.model_inputs[0].input_shapes.input[k] = [
            1, 3, 224, 224]
    onnx_file, report = deploy_mod.export_int8(
        cfg, qs['model_cfg'], qs['ckpt'], work,
        calib_dataset_cfg=qs['calib_cfg'], log=lambda m: None)
    return dict(work=work, onnx=onnx_file, report=report, cfg=cfg)


def test_tensorrt_int8_qdq_onnx(trt_int8, tmp_path):
    """end2end.onnx of the TensorRT INT8 config: the FP32 TensorRT export
    (same inputs, outputs and EfficientNMS_TRT node) with its convolutions
    quantized symmetrically (INT8, zero point 0: TensorRT's explicit
    quantization), most of them INT8, the part before the plugin close to
    FP32 in ONNX Runtime."""
    import onnx
    import onnxruntime as ort
    from damoyolo_mm.deploy.quantization import split_plugin_nms
    q = onnx.load(trt_int8['onnx'])
    f = onnx.load(osp.join(trt_int8['work'], 'end2end_fp32.onnx'))
    onnx.checker.check_model(q)
    assert q.graph.input == f.graph.input
    assert q.graph.output == f.graph.output
    assert [o.name for o in q.graph.output] == [
        'num_dets', 'det_boxes', 'det_scores', 'det_classes']
    plugin = [n for n in q.graph.node if n.op_type == 'EfficientNMS_TRT']
    assert len(plugin) == 1 and plugin[0] == [
        n for n in f.graph.node if n.op_type == 'EfficientNMS_TRT'][0]
    assert {o.domain: o.version for o in q.opset_import}['TRT'] == 1
    r = trt_int8['report']
    assert r['qdq']['quantized_conv'] == len(r['layers']) - len(
        r['keep_float']) > 0.7 * len(r['layers'])
    init = {i.name: onnx.numpy_helper.to_array(i) for i in q.graph.initializer}
    zero_points = [init[n.input[2]] for n in q.graph.node
                   if n.op_type in ('QuantizeLinear', 'DequantizeLinear')]
    # one Q / DQ pair per activation, a DQ per weight; biases float
    assert len(zero_points) >= 2 * r['qdq']['quantized_conv']
    assert all(z.dtype == np.int8 and not z.any() for z in zero_points)
    assert r['partial_error'] < r['full_int8_error']
    # the quantized part before the plugin against the FP32 one
    parts = []
    for name, model_file in (('q', trt_int8['onnx']),
                             ('f', osp.join(trt_int8['work'],
                                            'end2end_fp32.onnx'))):
        part = str(tmp_path / f'{name}.onnx')
        split_plugin_nms(model_file, part)
        parts.append(ort.InferenceSession(
            part, providers=['CPUExecutionProvider']))
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 224, 224)).astype(
        np.float32)
    (qb, qs_), (fb, fs) = (s.run(None, {'input': x}) for s in parts)
    assert qb.shape == fb.shape and qs_.shape == fs.shape == (1, qb.shape[1],
                                                              5)
    assert np.abs(qs_ - fs).max() < 0.2
    assert np.abs(qs_ - fs).mean() < 0.02
    # no temporary folder left behind
    assert not [n for n in os.listdir(trt_int8['work']) if n.startswith('.')]


def test_tensorrt_int8_engine(qs, trt_int8, deploy_mod, tmp_path):
    """Build the explicit INT8 engine from the QDQ file and compare its
    detections on a val image with the same QDQ graph run on the CPU (ONNX
    Runtime before the plugin, the plugin's reference after it); GPU only."""
    missing = gpu_missing()
    if missing:
        pytest.skip(f'TensorRT INT8 engine test needs {missing}')
    import onnxruntime as ort
    from damoyolo_mm.deploy.quantization import (build_calib_dataset,
                                                 calib_inputs,
                                                 split_plugin_nms)
    engine = deploy_mod.build_trt_engine(trt_int8['cfg'], trt_int8['onnx'],
                                         trt_int8['work'], log=print)
    ds = build_calib_dataset(qs['model_cfg'])  # the val split
    x = calib_inputs(ds, trt_int8['cfg'], qs['model_cfg'], 1)[0]
    out = deploy_mod.TRTRunner(engine)(torch.from_numpy(x).cuda())
    part = str(tmp_path / 'before_nms.onnx')
    split_plugin_nms(trt_int8['onnx'], part)
    boxes, scores = ort.InferenceSession(
        part, providers=['CPUExecutionProvider']).run(None, {'input': x})
    tc = qs['model_cfg'].model.test_cfg
    n, db, ds_, dc = deploy_mod.EfficientNMSOp.apply(
        torch.from_numpy(boxes), torch.from_numpy(scores),
        tc.nms.iou_threshold, tc.score_thr, tc.max_per_img)
    k, k_ref = int(out['num_dets'][0, 0]), int(n[0, 0])
    assert k > 0 and k_ref > 0
    # the best detection: same class, box within 2 px, score within 0.05
    assert int(out['det_classes'][0, 0]) == int(dc[0, 0])
    assert (out['det_boxes'][0, 0].float().cpu() - db[0, 0]).abs().max() < 2
    assert abs(float(out['det_scores'][0, 0]) - float(ds_[0, 0])) < 0.05


# ----------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------
def _export(qs, deploy_mod, work, cfg=None, calib=None, **kw):
    return deploy_mod.export_int8(
        cfg or qs['deploy_cfg'](INT8_CFG, **kw), qs['model_cfg'], qs['ckpt'],
        str(work), calib_dataset_cfg=calib or qs['calib_cfg'],
        log=lambda m: None)


def _nothing_complete(work):
    names = os.listdir(work) if osp.isdir(work) else []
    assert 'end2end.onnx' not in names and 'quantization.json' not in names
    assert not [n for n in names if n.startswith('.')], names


def test_missing_calibration_dataset(qs, deploy_mod, tmp_path):
    calib = copy.deepcopy(qs['calib_cfg'])
    calib.val_dataloader.dataset.data_root = str(tmp_path / 'nowhere') + '/'
    with pytest.raises(FileNotFoundError,
                       match=r'val_dataloader.dataset.ann_file .*nowhere'):
        _export(qs, deploy_mod, tmp_path / 'w', calib=calib)
    _nothing_complete(tmp_path / 'w')
    with pytest.raises(FileNotFoundError, match='--calib-dataset-cfg'):
        _export(qs, deploy_mod, tmp_path / 'w',
                calib=str(tmp_path / 'no_such_cfg.py'))


def test_empty_calibration_dataset(qs, deploy_mod, tmp_path):
    ann = json.load(open(qs['root'] + 'annotations/instances_val.json'))
    ann.update(images=[], annotations=[])
    empty = str(tmp_path / 'empty.json')
    json.dump(ann, open(empty, 'w'))
    calib = copy.deepcopy(qs['calib_cfg'])
    calib.val_dataloader.dataset.ann_file = empty
    with pytest.raises(ValueError, match='has no image'):
        _export(qs, deploy_mod, tmp_path / 'w', calib=calib)
    _nothing_complete(tmp_path / 'w')


def test_fewer_images_than_requested(qs, deploy_mod, tmp_path):
    with pytest.raises(ValueError,
                       match=r'num_images=500 but .* only 160 images'):
        _export(qs, deploy_mod, tmp_path / 'w', num_images=500)
    _nothing_complete(tmp_path / 'w')


def test_keep_float_larger_than_layers(qs, deploy_mod, tmp_path):
    with pytest.raises(ValueError,
                       match=r'keep_float=1000 but the model has only \d+ '
                       'quantizable layers'):
        _export(qs, deploy_mod, tmp_path / 'w', keep_float=1000,
                num_images=2, sensitivity_images=1)
    _nothing_complete(tmp_path / 'w')


@pytest.mark.parametrize('key,value,match', [
    ('keep_float', -1, 'keep_float=-1'),
    ('keep_float', 'most', "keep_float='most'"),
    ('method', 'Magic', "method='Magic'"),
    ('sensitivity_images', 64, 'sensitivity_images=64 > '),
])
def test_bad_calib_config(deploy_mod, key, value, match):
    cfg = Config.fromfile(INT8_CFG)
    cfg.calib_config[key] = value
    with pytest.raises(ValueError, match=match):
        deploy_mod.get_calib_config(cfg)
    cfg.calib_config = dict(typo=1)
    with pytest.raises(KeyError, match='unknown keys'):
        deploy_mod.get_calib_config(cfg)


def test_int8_config_for_uninstalled_backend(deploy_mod, monkeypatch):
    import sys

    import onnxruntime as ort
    monkeypatch.setitem(sys.modules, 'openvino', None)
    with pytest.raises(ImportError, match='pip install'):
        deploy_mod.check_backend_available('openvino', precision='int8')
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    with pytest.raises(ImportError, match='onnxruntime'):
        deploy_mod.check_backend_available('onnxruntime', precision='int8')
    with pytest.raises(ImportError, match='onnxruntime'):
        deploy_mod.check_backend_available('tensorrt', precision='int8')
    monkeypatch.setitem(sys.modules, 'onnxruntime', ort)
    monkeypatch.setitem(sys.modules, 'tensorrt', None)
    with pytest.raises(ImportError, match='tensorrt'):
        deploy_mod.check_backend_available('tensorrt', precision='int8')
    # the QDQ file alone (no engine) needs no TensorRT
    deploy_mod.check_backend_available('tensorrt', build_engine=False,
                                       precision='int8')
