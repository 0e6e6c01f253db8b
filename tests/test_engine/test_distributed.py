"""Training under torchrun: 2 CPU processes (gloo) against 1 process.

tests/test_engine/dist_worker.py trains DAMO-YOLO-Ns at 128 px for 2
iterations on the first 8 demo images with a deterministic pipeline.
2 processes x batch 2 must give the weights of 1 process x batch 4: that
needs SyncBN (batch statistics over both processes), DDP's gradient average
and the positive counts of the loss reduced across the processes.
"""
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch

WORKER = osp.join(osp.dirname(osp.abspath(__file__)), 'dist_worker.py')


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _env():
    return dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')


def start(out, data_root, nproc, *args):
    cmd = [WORKER, '--data-root', data_root, '--out', str(out), *args]
    if nproc > 1:
        cmd = ['-m', 'torch.distributed.run', f'--nproc-per-node={nproc}',
               '--master-addr=127.0.0.1', f'--master-port={free_port()}'
               ] + cmd + ['--launcher', 'pytorch']
    return subprocess.Popen([sys.executable] + cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=_env())


def finish(proc, out):
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, log[-4000:]
    with open(osp.join(out, 'steps.json')) as f:
        report = json.load(f)
    state = torch.load(osp.join(out, 'final.pth'), map_location='cpu',
                       weights_only=True)
    return report, state


def rel_diff(a, b):
    return float((a.float() - b.float()).norm() / b.float().norm().clamp(
        min=1e-12))


@pytest.fixture(scope='module')
def det_runs(demo_data_root, tmp_path_factory):
    """2 processes x batch 2 (SyncBN) and 1 process x batch 4, in parallel."""
    two = tmp_path_factory.mktemp('two_procs')
    one = tmp_path_factory.mktemp('one_proc')
    procs = [start(two, demo_data_root, 2, '--batch', '2'),
             start(one, demo_data_root, 1, '--batch', '4')]
    return finish(procs[0], two), finish(procs[1], one)


def test_ranks_hold_identical_weights_after_each_step(det_runs):
    (report, _), _ = det_runs
    assert report['world_size'] == 2
    assert report['wrapper'] == 'DAMOYOLODistributedDataParallel'
    # every BatchNorm of the model was synchronised
    assert report['bn_layers'] > 0
    assert report['sync_bn_layers'] == report['bn_layers']
    assert [s['iter'] for s in report['steps']] == [1, 2]
    for step in report['steps']:
        assert step['max_rank_diff'] == 0.0, report['steps']


def test_two_processes_equal_one_process_with_the_whole_batch(det_runs):
    (two_report, two), (one_report, one) = det_runs
    assert one_report['world_size'] == 1 and one_report['sync_bn_layers'] == 0
    assert one.keys() == two.keys()
    # the 2 steps moved the weights (1e-3 relative) well beyond the
    # tolerance (1e-4): a wrong normalisation would show
    assert one_report['rel_change'] > 5e-4, one_report
    floats = [k for k, v in one.items() if v.is_floating_point()]
    for key in set(one) - set(floats):
        assert torch.equal(two[key], one[key]), key  # num_batches_tracked
    flat_two = torch.cat([two[k].flatten().float() for k in floats])
    flat_one = torch.cat([one[k].flatten().float() for k in floats])
    # measured: 2e-6 with SyncBN; 9e-2 without (dist_worker --no-sync-bn)
    assert rel_diff(flat_two, flat_one) < 1e-4
    # each tensor too; an absolute floor of 1e-7 per element for tensors
    # at float-noise level (BatchNorm biases whose gradient is zero up to
    # rounding, ~1e-10, before another BatchNorm)
    bad = {}
    for key in floats:
        diff = float((two[key].float() - one[key].float()).norm())
        limit = 1e-4 * float(one[key].float().norm()) + \
            1e-7 * one[key].numel() ** 0.5
        if diff > limit:
            bad[key] = (diff, limit)
    assert not bad, sorted(bad.items(), key=lambda kv: -kv[1][0])[:10]


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory, repo_root):
    """The demo Nm teacher with random weights (BN statistics perturbed)."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(
        repo_root, 'configs/distill/damoyolo_demo_nm_teacher.py'))
    torch.manual_seed(0)
    teacher = MODELS.build(cfg.model)
    teacher.init_weights()
    for name, buf in teacher.named_buffers():
        if name.endswith('running_var'):
            buf.uniform_(0.5, 2.0)
    path = str(tmp_path_factory.mktemp('teacher') / 'teacher.pth')
    torch.save(dict(state_dict=teacher.state_dict()), path)
    return path


def test_distiller_under_ddp(demo_data_root, teacher_ckpt, tmp_path):
    """2 processes, 1 iteration of the demo distiller (prediction and neck
    distillation together): no unused-parameter error, the ranks agree,
    the frozen teacher is untouched and stays out of the DDP reducer."""
    proc = start(tmp_path, demo_data_root, 2, '--mode', 'distill',
                 '--batch', '2', '--num-images', '4', '--teacher-ckpt',
                 teacher_ckpt)
    report, state = finish(proc, tmp_path)
    assert report['world_size'] == 2
    assert [s['iter'] for s in report['steps']] == [1]
    assert report['steps'][0]['max_rank_diff'] == 0.0
    assert report['teacher_max_change'] == 0.0
    assert not report['teacher_in_state_dict']
    # student and the feature-alignment module are trained together
    assert any(k.startswith('student.') for k in state)
    assert any(k.startswith('distill_loss.') for k in state)
    assert report['sync_bn_layers'] == report['bn_layers'] > 0
