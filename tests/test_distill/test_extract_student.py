"""tools/extract_student.py: plain student checkpoint from a distillation
checkpoint."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from distill_helpers import make_batch
from mmdet.registry import MODELS
from mmengine.runner import load_checkpoint


@pytest.fixture(scope='module')
def tool(load_tool):
    return load_tool('extract_student')


def test_help(repo_root):
    out = subprocess.run(
        [sys.executable, osp.join(repo_root, 'tools', 'extract_student.py'),
         '--help'], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'usage:' in out.stdout and '--check-config' in out.stdout


def test_extracted_student_loads_strictly_and_matches(
        tool, distill_run, student_cfg, tmp_path):
    src = distill_run['ckpt']
    dst = str(tmp_path / 'student.pth')
    assert tool.main([src, dst]) == 0
    ckpt = torch.load(dst, weights_only=False)
    assert set(ckpt) == {'meta', 'state_dict'}
    assert not any(k.startswith(('student.', 'distill_loss.', 'teacher'))
                   for k in ckpt['state_dict'])
    assert ckpt['meta']['extracted_from'] == osp.abspath(src)
    assert 'distill_cfg' in ckpt['meta'] and 'cfg' not in ckpt['meta']
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.tmp')]

    # the plain student config loads it strictly (as tools/test.py does)
    plain = MODELS.build(student_cfg)
    load_checkpoint(plain, dst, map_location='cpu', strict=True)
    plain.eval()

    # wrapped student with the same checkpoint (EMA weights of state_dict)
    wrapped = distill_run['model']
    load_checkpoint(wrapped, src, map_location='cpu', strict=True)
    wrapped.eval()
    src_sd = torch.load(src, weights_only=False)['state_dict']
    for k, v in plain.state_dict().items():
        assert torch.equal(v, src_sd['student.' + k]), k

    inputs, samples = make_batch(seed=7)
    with torch.no_grad():
        out_plain = plain._forward(inputs, samples)
        out_wrapped = wrapped(inputs, samples, mode='tensor')
        for a, b in zip(out_plain, out_wrapped):
            for x, y in zip(a, b):
                assert torch.equal(x, y)
        p1 = plain.predict(inputs, samples)
        p2 = wrapped(inputs, samples, mode='predict')
    for a, b in zip(p1, p2):
        assert torch.equal(a.pred_instances.bboxes, b.pred_instances.bboxes)
        assert torch.equal(a.pred_instances.scores, b.pred_instances.scores)


def test_raw_weights_and_errors(tool, distill_run, tmp_path, teacher_ckpt):
    src = distill_run['ckpt']
    raw = str(tmp_path / 'raw.pth')
    state = tool.extract(src, raw, raw=True)
    ema = torch.load(src, weights_only=False)['ema_state_dict']
    for k, v in state.items():
        assert torch.equal(v, ema['module.student.' + k]), k
    # refuses to overwrite without --force, and non-distill checkpoints
    with pytest.raises(FileExistsError, match='--force'):
        tool.main([src, raw])
    assert tool.main([src, raw, '--force']) == 0
    with pytest.raises(ValueError, match='not a distillation checkpoint'):
        tool.main([teacher_ckpt, str(tmp_path / 'x.pth')])
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        tool.main([str(tmp_path / 'missing.pth'), str(tmp_path / 'y.pth')])
    assert not osp.exists(tmp_path / 'x.pth')
