"""A kill -9 during a checkpoint save loses nothing (max_keep_ckpts=1).

tools/train.py trains DAMO-YOLO-Ns for 3 epochs (64 px, 3 iterations per
epoch, one checkpoint kept) in a subprocess that blocks while saving the
epoch-3 checkpoint and is killed there with SIGKILL. The epoch-2 checkpoint
must still be complete, ``last_checkpoint`` must name it, and
``tools/train.py --resume`` must finish with the same iteration, learning
rate and weights as an uninterrupted run.
"""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

from safety_helpers import REPO, tiny_config

HERE = osp.dirname(osp.abspath(__file__))


def _env():
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join(
        [HERE, REPO] + [p for p in [env.get('PYTHONPATH')] if p])
    return env


def _train(config, work_dir, *extra, wait=True):
    cmd = [sys.executable, osp.join(REPO, 'tools', 'train.py'), str(config),
           '--work-dir', str(work_dir), *extra]
    if not wait:
        return subprocess.Popen(cmd, env=_env(), cwd=REPO,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
    out = subprocess.run(cmd, env=_env(), cwd=REPO, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def _final(work_dir):
    ckpt = torch.load(osp.join(work_dir, 'epoch_3.pth'), weights_only=True)
    return ckpt


@pytest.fixture(scope='module')
def uninterrupted(demo_data_root, tmp_path_factory):
    root = tmp_path_factory.mktemp('uninterrupted')
    config = root / 'cfg.py'
    config.write_text(tiny_config(demo_data_root))
    _train(config, root / 'work')
    return _final(str(root / 'work'))


@pytest.mark.parametrize('point', ['before_write', 'before_rename'])
def test_kill_during_save_then_resume(point, demo_data_root, tmp_path,
                                      uninterrupted):
    work = tmp_path / 'work'
    marker = tmp_path / 'blocked'
    config = tmp_path / 'cfg.py'
    config.write_text(tiny_config(demo_data_root, custom_hooks=[
        dict(type='CheckFiniteLossHook'),
        dict(type='BlockCheckpointSaveHook', epoch=3, marker=str(marker),
             point=point)
    ]))
    proc = _train(config, work, wait=False)
    try:
        deadline = time.time() + 600
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail('training ended before the blocked save: '
                            + proc.stderr.read().decode()[-3000:])
            assert time.time() < deadline, 'the save was never reached'
            time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    # the last complete checkpoint is there and last_checkpoint names it
    with open(work / 'last_checkpoint') as f:
        last = f.read().strip()
    assert osp.basename(last) == 'epoch_2.pth'
    ckpt = torch.load(last, weights_only=True)
    assert ckpt['meta']['epoch'] == 2 and ckpt['meta']['iter'] == 6
    assert not (work / 'epoch_3.pth').exists()

    # resume: continues from epoch 2 and ends like the uninterrupted run
    config.write_text(tiny_config(demo_data_root))
    _train(config, work, '--resume')
    files = sorted(f for f in os.listdir(work) if f.endswith('.pth'))
    assert files == ['epoch_3.pth']  # max_keep_ckpts=1, temporaries gone
    assert not [f for f in os.listdir(work) if f.endswith('.tmp')]
    resumed = _final(str(work))
    assert resumed['meta']['epoch'] == uninterrupted['meta']['epoch'] == 3
    assert resumed['meta']['iter'] == uninterrupted['meta']['iter'] == 9
    lr = [g['lr'] for g in resumed['optimizer']['param_groups']]
    assert lr == [g['lr'] for g in uninterrupted['optimizer']['param_groups']]
    for key, value in uninterrupted['state_dict'].items():
        torch.testing.assert_close(resumed['state_dict'][key], value,
                                   rtol=0, atol=0, msg=key)
