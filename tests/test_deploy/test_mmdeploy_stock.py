"""Unmodified MMDeploy 1.3.1 with the shipped deploy configs.

``stock_mmdeploy_convert.py`` runs, in a fresh process that imports only
MMDeploy, the conversion calls of MMDeploy's ``tools/deploy.py``
(``torch2onnx`` in a spawned process) with the shipped ONNX Runtime config
and an official release-format checkpoint (the T golden weights), then the
inference of MMDeploy's ``visualize_model`` on the backend model and on the
PyTorch model. The deploy config's ``custom_imports`` bring in
``damoyolo_mm.deploy`` (rewriters, torch >= 2.9 export fix); the detector
converts the official checkpoint in memory.

Also: importing ``damoyolo_mm.deploy`` changes nothing process-wide beyond
MMDeploy's rewriter registry (``torch.onnx.export`` is untouched).
"""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from deploy_helpers import match_detections

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
BOX_TOL, SCORE_TOL = 1e-3, 1e-4


def _env():
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='2')
    # the clone's damoyolo_mm, found through the configs' custom_imports
    env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
    return env


def test_stock_mmdeploy_api_with_shipped_config(deploy_mod, golden_dir,
                                                tmp_path):
    import cv2
    golden = torch.load(osp.join(golden_dir, 'T_golden.pt'),
                        weights_only=True)
    img = str(tmp_path / 'golden_t.png')
    # RGB golden input -> BGR file (mmdet loads BGR, the model converts)
    cv2.imwrite(img, golden['input'][0].permute(1, 2, 0).numpy()[..., ::-1]
                .astype(np.uint8))
    out_npz = str(tmp_path / 'dets.npz')
    work = str(tmp_path / 'work')
    proc = subprocess.run(
        [sys.executable, osp.join(HERE, 'stock_mmdeploy_convert.py'),
         osp.join(REPO, 'configs/deploy/'
                  'detection_onnxruntime_static-640x640.py'),
         osp.join(REPO, 'configs/damoyolo_t_coco.py'),
         osp.join(golden_dir, 'T_ckpt_fp16.pth'), img, work, out_npz],
        cwd=str(tmp_path), env=_env(), capture_output=True, text=True,
        timeout=900)
    log = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, log
    assert osp.isfile(osp.join(work, 'end2end.onnx'))
    assert 'official DAMO-YOLO checkpoint (586 tensors' in log
    r = np.load(out_npz)
    ort, pt = ({k: r[f'{p}_{k}'] for k in ('bboxes', 'scores', 'labels')}
               for p in ('ort', 'pt'))
    # the golden weights give 500 detections (the cap) on the golden input
    assert len(pt['scores']) == len(ort['scores']) == 500
    un_a, un_b, db, ds = match_detections(ort, pt, BOX_TOL, SCORE_TOL)
    assert not un_a and not un_b, (len(un_a), len(un_b))
    assert db <= BOX_TOL and ds <= SCORE_TOL
    # and they are the official detections (golden, 640x640 = image size)
    ref = {k: golden['dets'][k].numpy() for k in ('bboxes', 'scores',
                                                  'labels')}
    un_a, un_b, _, _ = match_detections(pt, ref, BOX_TOL, SCORE_TOL)
    assert not un_a and not un_b, (len(un_a), len(un_b))


def test_import_changes_nothing_process_wide():
    code = '''
import inspect, torch
before = torch.onnx.export
sig = inspect.signature(torch.onnx.export)
import damoyolo_mm.deploy
from mmdeploy.core import FUNCTION_REWRITER
assert torch.onnx.export is before, 'torch.onnx.export replaced'
assert inspect.signature(torch.onnx.export) == sig
assert 'torch.onnx.export' in FUNCTION_REWRITER._registry._rewrite_records
print('ok')
'''
    pytest.importorskip('mmdeploy')
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                          env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and 'ok' in proc.stdout, proc.stderr[-3000:]
