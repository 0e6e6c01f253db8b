"""MMDeploy 1.3.1 on torch 2.13: compat fixes, checks and error messages."""
import glob
import importlib.util
import os.path as osp
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from deploy_helpers import REPO
from mmengine.config import Config


class _Tiny(nn.Module):

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(x).relu() * 2


def test_mmdeploy_export_uses_torchscript_exporter(deploy_mod, tmp_path):
    """MMDeploy's own export entry works on torch 2.13 (dynamo=False)."""
    from mmdeploy.apis.onnx import export
    from mmdeploy.core import FUNCTION_REWRITER, RewriterContext
    seen = {}
    original = torch.onnx.export
    with RewriterContext(cfg={}, backend='onnxruntime'):
        # the compat rewriter replaces torch.onnx.export inside MMDeploy's
        # rewriter context only
        assert torch.onnx.export is not original
        seen['name'] = torch.onnx.export.__name__
    assert torch.onnx.export is original
    assert seen['name'] == 'torch_onnx_export__torchscript'
    model = _Tiny().eval()
    x = torch.rand(1, 3, 32, 32)
    export(model, x, str(tmp_path / 'tiny'), backend='onnxruntime',
           input_names=['input'], output_names=['output'], opset_version=11)
    import onnxruntime as ort
    sess = ort.InferenceSession(str(tmp_path / 'tiny.onnx'),
                                providers=['CPUExecutionProvider'])
    out = sess.run(None, {'input': x.numpy()})[0]
    np.testing.assert_allclose(out, model(x).detach().numpy(), atol=1e-5)
    assert FUNCTION_REWRITER is not None


def test_without_the_fix_torch_defaults_to_dynamo():
    """The reason for the fix: torch 2.13's export defaults to dynamo."""
    import inspect
    params = inspect.signature(torch.onnx.export).parameters
    if 'dynamo' not in params:
        pytest.skip(f'torch {torch.__version__} has no dynamo= switch')
    assert params['dynamo'].default is True


def test_onnx_export_helper(deploy_mod, tmp_path):
    model = _Tiny().eval()
    x = torch.rand(1, 3, 32, 32)
    deploy_mod.onnx_export(model, (x, ), str(tmp_path / 't.onnx'),
                           input_names=['x'], opset_version=13)
    import onnx
    onnx.checker.check_model(onnx.load(str(tmp_path / 't.onnx')))


def test_require_names_what_to_install(deploy_mod, monkeypatch):
    with pytest.raises(ImportError, match='pip install'):
        deploy_mod.require('no_such_package_damoyolo_xyz')
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    with pytest.raises(ImportError, match=r'onnxruntime.*pip install'):
        deploy_mod.require('onnxruntime')
    with pytest.raises(ImportError, match='onnxruntime'):
        deploy_mod.check_backend_available('onnxruntime')


def test_check_tensorrt_message(deploy_mod):
    has_trt = importlib.util.find_spec('tensorrt') is not None
    if has_trt and torch.cuda.is_available():
        pytest.skip('TensorRT and a GPU are present: nothing is missing')
    with pytest.raises((ImportError, RuntimeError)) as err:
        deploy_mod.check_tensorrt(fp16=True)
    msg = str(err.value)
    if not has_trt:
        assert 'tensorrt>=10,<11' in msg and 'GPU' in msg
    else:
        assert 'GPU' in msg or 'FP16' in msg


def test_input_size_must_be_multiple_of_32(deploy_mod):
    deploy_mod.check_input_shape(640, 640)
    deploy_mod.check_input_shape(416, 320)
    with pytest.raises(ValueError, match=r'500x640.*height=500.*multiple '
                       'of 32'):
        deploy_mod.check_input_shape(500, 640)
    with pytest.raises(ValueError, match='width=0'):
        deploy_mod.check_input_shape(320, 0)


def test_unsupported_backend(deploy_mod):
    cfg = Config(dict(backend_config=dict(type='ncnn')))
    with pytest.raises(ValueError, match=r'ncnn.*not supported.*'
                       'onnxruntime'):
        deploy_mod.get_backend_name(cfg)
    with pytest.raises(KeyError, match='backend_config'):
        deploy_mod.get_backend_name(Config(dict()))


DEPLOY_CFGS = sorted(glob.glob(osp.join(REPO, 'configs', 'deploy', '*.py')))
MODEL_FOR = {
    'nano': ['damoyolo_ns_coco', 'damoyolo_nm_coco', 'damoyolo_nl_coco'],
    'other': ['damoyolo_t_coco', 'damoyolo_s_coco', 'damoyolo_m_coco',
              'damoyolo_l_coco'],
}


def test_deploy_configs(deploy_mod):
    # onnxruntime x4, openvino x2, int8 (onnxruntime, openvino) x4,
    # tensorrt fp16 x2, tensorrt int8 x2
    assert len(DEPLOY_CFGS) == 14, DEPLOY_CFGS
    for path in DEPLOY_CFGS:
        with open(path) as f:
            assert 'mmdeploy' not in f.read(), f'{path} points into mmdeploy'
        cfg = Config.fromfile(path)
        backend = deploy_mod.get_backend_name(cfg)
        onnx_cfg = cfg.onnx_config
        post = cfg.codebase_config.post_processing
        assert post.keep_top_k == 500 and post.max_output_boxes_per_class \
            >= 500 and post.pre_top_k == -1, path
        int8 = deploy_mod.get_precision(cfg) == 'int8'
        assert ('int8' in path) == int8, path
        if int8:
            calib = deploy_mod.get_calib_config(cfg)
            # TensorRT's explicit quantization: zero points 0, float biases
            assert calib['symmetric'] == (backend == 'tensorrt'), path
            assert calib['quantize_bias'] == (backend != 'tensorrt'), path
        if backend == 'tensorrt':
            assert onnx_cfg.opset_version == 13
            assert cfg.backend_config.common_config.fp16_mode is True
            assert list(onnx_cfg.output_names) == list(
                deploy_mod.TRT_OUTPUT_NAMES)
        else:
            # INT8: per-channel DequantizeLinear needs opset 13
            assert onnx_cfg.opset_version == (13 if int8 else 11), path
            assert list(onnx_cfg.output_names) == ['dets', 'labels']
        if onnx_cfg.input_shape is not None:
            w, h = onnx_cfg.input_shape
            deploy_mod.check_input_shape(h, w)
            assert (h == 416) == ('nano' in path), path
        else:
            assert 'dynamic' in path and onnx_cfg.dynamic_axes.input == {
                0: 'batch', 2: 'height', 3: 'width'}


@pytest.mark.parametrize('deploy_cfg', DEPLOY_CFGS,
                         ids=[osp.basename(p) for p in DEPLOY_CFGS])
def test_post_processing_equals_test_cfg(deploy_mod, deploy_cfg):
    """Every deploy config agrees with the test_cfg of the models it is made
    for, and is rejected for the other family."""
    nano = 'nano' in osp.basename(deploy_cfg)
    for family, names in MODEL_FOR.items():
        for name in names:
            model_cfg = osp.join(REPO, 'configs', name + '.py')
            assert osp.isfile(model_cfg), \
                f'{model_cfg} not found: update MODEL_FOR'
            d, m = Config.fromfile(deploy_cfg), Config.fromfile(model_cfg)
            if (family == 'nano') == nano:
                notes = deploy_mod.check_post_processing(d, m)
                assert all('nms_pre' in n for n in notes)
            else:
                with pytest.raises(ValueError, match='score_threshold'):
                    deploy_mod.check_post_processing(d, m)


def test_post_processing_mismatch_message(deploy_mod):
    d = Config.fromfile(osp.join(
        REPO, 'configs/deploy/detection_onnxruntime_static-640x640.py'))
    m = Config.fromfile(osp.join(REPO, 'configs/damoyolo_t_coco.py'))
    d.codebase_config.post_processing.iou_threshold = 0.5
    d.codebase_config.post_processing.max_output_boxes_per_class = 100
    with pytest.raises(ValueError) as err:
        deploy_mod.check_post_processing(d, m)
    msg = str(err.value)
    assert 'iou_threshold=0.5 vs test_cfg.nms.iou_threshold=0.7' in msg
    assert 'max_output_boxes_per_class=100' in msg
