"""tools/benchmark_latency.py: short runs against the official code."""
import os
import os.path as osp
import re
import sys

import pytest
import torch
from deploy_helpers import REPO

# the official DAMO-YOLO source checked out beside the clone (not part of it)
OFFICIAL_ROOT = os.environ.get(
    'DAMOYOLO_OFFICIAL_ROOT',
    osp.join(osp.dirname(REPO), 'ref', 'damoyolo_official'))


@pytest.fixture
def official_root():
    if not osp.isdir(osp.join(OFFICIAL_ROOT, 'damo')):
        pytest.skip(f'official DAMO-YOLO source not at {OFFICIAL_ROOT}')
    return OFFICIAL_ROOT


def test_benchmark_pytorch_against_official(golden_dir, capsys,
                                            official_root, load_tool):
    """Short run of the benchmark: fused PyTorch, ours vs official (Ns)."""
    tool = load_tool('benchmark_latency')
    res = tool.main([
        'configs/damoyolo_ns_coco.py', '--official-ckpt',
        osp.join(golden_dir, 'Ns_ckpt_fp16.pth'), '--official-root',
        official_root, '--official-config',
        'configs/damoyolo_tinynasL18_Ns.py', '--iters', '2', '--warmup',
        '0', '--threads', '2', '--no-nms-row'
    ])
    log = capsys.readouterr().out
    assert 'machine: platform=' in log and 'threads=2' in log
    assert 'cpu=' in log and 'gpu=' in log
    # ours: channels-last (the deploy form's default) and NCHW
    assert set(res['results']) == {'ours fused (net + decode)',
                                   'ours fused NCHW (net + decode)',
                                   'official fused (net + decode)'}
    for r in res['results'].values():
        assert r['iters'] == 2 and 0 < r['median_ms'] <= r['p90_ms']
    assert len(res['ratios']) == 2 and all(
        r > 0 for r in res['ratios'].values())
    assert 'ratio ours/official (median)' in log
    assert 'channels-last vs NCHW outputs: max |d|' in log
    # same weights: the official and our outputs agree
    m = re.search(r'max \|d score\| ([0-9.e+-]+), max \|d box\| '
                  r'([0-9.e+-]+) px', log)
    assert m and float(m.group(1)) < 1e-4 and float(m.group(2)) < 1e-3


def test_benchmark_bad_backend_package(golden_dir, monkeypatch, load_tool):
    tool = load_tool('benchmark_latency')
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    with pytest.raises(ImportError, match='onnxruntime'):
        tool.main(['configs/damoyolo_ns_coco.py', '--official-ckpt',
                   osp.join(golden_dir, 'Ns_ckpt_fp16.pth'), '--backend',
                   'onnxruntime', '--iters', '1'])


def test_benchmark_official_env_leaves_no_trace(official_root, load_tool):
    """The stand-ins and official modules do not leak into the process."""
    tool = load_tool('benchmark_latency')
    before_mods, before_path = set(sys.modules), list(sys.path)
    cwd = osp.abspath('.')
    with tool.official_env(official_root):
        import damo.base_models.core.ops as ops  # noqa: F401
        assert 'torchvision' in sys.modules and 'damo' in sys.modules
        assert osp.abspath('.') != cwd
    assert osp.abspath('.') == cwd and sys.path == before_path
    leaked = {m for m in set(sys.modules) - before_mods
              if m.split('.')[0] in ('damo', 'torchvision', 'loguru', 'thop',
                                     'easydict')}
    assert not leaked, leaked
    assert ops.SiLU()(torch.ones(1)).item() == pytest.approx(0.7310586)


def test_benchmark_onnxruntime_against_official_converter(
        golden_dir, capsys, official_root, tmp_path, load_tool):
    """ONNX Runtime: our ONNX vs the one written by the official
    tools/converter.py on the same weights (Ns, one timed run)."""
    tool = load_tool('benchmark_latency')
    res = tool.main([
        'configs/damoyolo_ns_coco.py', '--official-ckpt',
        osp.join(golden_dir, 'Ns_ckpt_fp16.pth'), '--official-root',
        official_root, '--official-config',
        'configs/damoyolo_tinynasL18_Ns.py', '--backend', 'onnxruntime',
        '--iters', '1', '--warmup', '0', '--threads', '2', '--work-dir',
        str(tmp_path)
    ])
    log = capsys.readouterr().out
    assert set(res['results']) == {
        'ours ORT (net + decode)', 'ours ORT end2end (+ NMS)',
        'official ORT (net + decode)'
    }
    assert (tmp_path / 'official_damoyolo_tinynasL18_Ns.onnx').is_file()
    assert (tmp_path / 'ours_e2e' / 'end2end.onnx').is_file()
    m = re.search(r'ours vs official ONNX outputs: max \|d box\| '
                  r'([0-9.e+-]+) px, max \|d score\| ([0-9.e+-]+)', log)
    assert m and float(m.group(1)) < 1e-3 and float(m.group(2)) < 1e-4
    assert 'ratio ours/official (median)' in log


def test_default_deploy_config_backend_and_precision():
    """The deploy configs the latency rows export with, per backend and
    precision, read from the variant table."""
    from damoyolo_mm.deploy.defaults import default_deploy_config
    ns, t = 'configs/damoyolo_ns_coco.py', 'configs/damoyolo_t_coco.py'
    cases = {
        ('openvino', 416, ns, 'fp32'):
        'detection_openvino_static-416x416_nano.py',
        ('openvino', 640, t, 'int8'):
        'detection_openvino-int8_static-640x640.py',
        ('onnxruntime', 416, ns, 'int8'):
        'detection_onnxruntime-int8_static-416x416_nano.py',
        ('onnxruntime', 512, t, 'fp32'): 'detection_onnxruntime_dynamic.py',
        ('tensorrt', 640, t, 'fp32'):
        'detection_tensorrt-fp16_static-640x640.py',
    }
    for (backend, size, cfg, precision), name in cases.items():
        path = default_deploy_config(backend, size, size, cfg, precision)
        assert osp.basename(path) == name and osp.isfile(path)
    with pytest.raises(ValueError, match=r'openvino.*512x512.*--deploy-cfg'):
        default_deploy_config('openvino', 512, 512, t)
    with pytest.raises(ValueError, match=r'onnxruntime-int8.*512x512'):
        default_deploy_config('onnxruntime', 512, 512, t, 'int8')
    with pytest.raises(ValueError, match="FP16 only.*'int8'"):
        default_deploy_config('tensorrt', 640, 640, t, 'int8')
    with pytest.raises(ValueError, match="precision 'fp16'"):
        default_deploy_config('openvino', 640, 640, t, 'fp16')
