"""tools/deploy.py: runs and bad input (and both tools' --help)."""
import importlib.util
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from deploy_helpers import REPO
from mmengine.config import Config

PY = sys.executable


@pytest.fixture(scope='module')
def ns_ckpt(golden_dir, tmp_path_factory):
    """An mmdet-layout checkpoint of Ns (golden weights, converted)."""
    pytest.importorskip('mmdeploy')
    from mmdet.registry import MODELS
    from damoyolo_mm.converters import convert_official_state_dict
    cfg = Config.fromfile(osp.join(REPO, 'configs/damoyolo_ns_coco.py'))
    model = MODELS.build(cfg.model)
    ck = torch.load(osp.join(golden_dir, 'Ns_ckpt_fp16.pth'),
                    weights_only=True)
    path = str(tmp_path_factory.mktemp('ckpt') / 'ns.pth')
    torch.save(dict(state_dict=convert_official_state_dict(
        ck['model'], model.state_dict()), meta=dict()), path)
    return path


@pytest.mark.parametrize('tool', ['deploy', 'benchmark_latency'])
def test_help(tool):
    out = subprocess.run([PY, osp.join(REPO, 'tools', f'{tool}.py'),
                          '--help'], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'usage:' in out.stdout
    if tool == 'deploy':
        assert '--onnx-only' in out.stdout and 'deploy_cfg' in out.stdout
    else:
        assert '--official-root' in out.stdout and 'tensorrt' in out.stdout


def test_deploy_onnxruntime(ns_ckpt, tmp_path, capsys, load_tool):
    tool = load_tool('deploy')
    work = str(tmp_path / 'ns')
    tool.main([
        'configs/deploy/detection_onnxruntime_static-416x416_nano.py',
        'configs/damoyolo_ns_coco.py', ns_ckpt, '--work-dir', work,
        '--verify'
    ])
    log = capsys.readouterr().out
    for step in range(1, 5):
        assert f'step {step}/4' in log
    assert 'wrote' in log and 'onnx.checker passed' in log
    assert osp.isfile(osp.join(work, 'end2end.onnx'))
    m = re.search(r'detections: pytorch (\d+), onnxruntime (\d+)', log)
    assert m and m.group(1) == m.group(2) != '0'
    m = re.search(r'matched (\d+)/(\d+) .* boxes ([0-9.e+-]+) px, scores '
                  r'([0-9.e+-]+)', log)
    assert m, log
    assert int(m.group(1)) >= 0.97 * int(m.group(2))
    assert float(m.group(3)) <= 1e-3 and float(m.group(4)) <= 1e-4


def test_deploy_tensorrt_onnx_only(ns_ckpt, tmp_path, capsys, load_tool):
    """TensorRT ONNX on a CPU, from a checkpoint saved in deploy form."""
    from mmdet.registry import MODELS
    from mmengine.runner import load_checkpoint
    cfg = Config.fromfile(osp.join(REPO, 'configs/damoyolo_ns_coco.py'))
    model = MODELS.build(cfg.model)
    load_checkpoint(model, ns_ckpt, map_location='cpu', strict=True)
    model.eval().switch_to_deploy()
    fused = str(tmp_path / 'ns_fused.pth')
    torch.save(dict(state_dict=model.state_dict()), fused)
    tool = load_tool('deploy')
    work = str(tmp_path / 'trt')
    args = ['configs/deploy/detection_tensorrt-fp16_static-416x416_nano.py',
            'configs/damoyolo_ns_coco.py', fused, '--work-dir', work,
            '--onnx-only']
    with pytest.raises(ValueError, match=r'ns_fused.pth does not fit.*'
                       r'missing.*deploy form.*model.deploy=True'):
        tool.main(args)  # a deploy-form checkpoint needs model.deploy=True
    tool.main(args + ['--cfg-options', 'model.deploy=True'])
    log = capsys.readouterr().out
    assert 'EfficientNMS_TRT' in log and 'engine skipped' in log
    import onnx
    model = onnx.load(osp.join(work, 'end2end.onnx'))
    onnx.checker.check_model(model)
    assert model.graph.node[-1].op_type == 'EfficientNMS_TRT'
    assert not osp.exists(osp.join(work, 'end2end.engine'))


def test_deploy_tensorrt_without_gpu_says_what_is_missing(ns_ckpt, tmp_path):
    if importlib.util.find_spec('tensorrt') is not None and \
            torch.cuda.is_available():
        pytest.skip('TensorRT and a GPU are present')
    out = subprocess.run([
        PY, 'tools/deploy.py',
        'configs/deploy/detection_tensorrt-fp16_static-640x640.py',
        'configs/damoyolo_t_coco.py', ns_ckpt, '--work-dir',
        str(tmp_path)
    ], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    assert 'tools/deploy.py: error:' in out.stderr
    if importlib.util.find_spec('tensorrt') is None:
        assert 'pip install "tensorrt>=10,<11"' in out.stderr
    else:
        assert 'GPU' in out.stderr
    assert 'Traceback' not in out.stderr
    # failed before exporting anything
    assert not osp.exists(osp.join(str(tmp_path), 'end2end.onnx'))


def _write_cfg(tmp_path, name, base, extra):
    path = tmp_path / name
    path.write_text(f"_base_ = ['{osp.join(REPO, base)}']\n{extra}\n")
    return str(path)


def test_deploy_bad_input(ns_ckpt, tmp_path, load_tool):
    tool = load_tool('deploy')
    base = 'configs/deploy/detection_onnxruntime_static-416x416_nano.py'
    bad_size = _write_cfg(tmp_path, 'size.py', base,
                          'onnx_config = dict(input_shape=[400, 416])')
    with pytest.raises(ValueError, match=r'416x400.*width=400.*multiple of '
                       '32'):
        tool.main([bad_size, 'configs/damoyolo_ns_coco.py', ns_ckpt,
                   '--work-dir', str(tmp_path / 'a')])
    bad_backend = _write_cfg(tmp_path, 'ncnn.py', base,
                             "backend_config = dict(type='ncnn')")
    with pytest.raises(ValueError, match=r'"ncnn" is not supported'):
        tool.main([bad_backend, 'configs/damoyolo_ns_coco.py', ns_ckpt,
                   '--work-dir', str(tmp_path / 'b')])
    # T deploy config (score 0.05 / IoU 0.7) on a nano model (0.03 / 0.65)
    with pytest.raises(ValueError, match='does not match the model test_cfg'):
        tool.main([
            'configs/deploy/detection_onnxruntime_static-640x640.py',
            'configs/damoyolo_ns_coco.py', ns_ckpt, '--work-dir',
            str(tmp_path / 'c')
        ])
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        tool.main([base, 'configs/damoyolo_ns_coco.py', 'nope.pth',
                   '--work-dir', str(tmp_path / 'd')])
    assert not any((tmp_path / d / 'end2end.onnx').exists()
                   for d in 'abcd')


def test_deploy_missing_onnxruntime(ns_ckpt, tmp_path, monkeypatch, load_tool):
    tool = load_tool('deploy')
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    with pytest.raises(ImportError, match=r'pip install "onnxruntime'):
        tool.main([
            'configs/deploy/detection_onnxruntime_static-416x416_nano.py',
            'configs/damoyolo_ns_coco.py', ns_ckpt, '--work-dir',
            str(tmp_path)
        ])
