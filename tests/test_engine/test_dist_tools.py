"""tools/dist_train.sh and tools/dist_test.sh with 2 CPU processes (gloo),
the launch checks and the backend choice of damoyolo_mm.engine.distributed.
"""
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from damoyolo_mm.engine import default_backend, setup_distributed

QUICKSTART = 'configs/quickstart/damoyolo_quickstart.py'
TRAINED = 'quickstart_ns_epoch55.pth'  # ../shared/golden, README section 8


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run_script(repo_root, script, args, port=None, timeout=600):
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1',
               PORT=str(port or free_port()), PYTHONUNBUFFERED='1')
    return subprocess.run(['bash', osp.join(repo_root, 'tools', script)] +
                          args, cwd=repo_root, env=env, capture_output=True,
                          text=True, timeout=timeout)


def data_options(root):
    return [
        f'train_dataloader.dataset.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        f'val_evaluator.ann_file={root}annotations/instances_val.json',
        f'test_evaluator.ann_file={root}annotations/instances_val.json',
        'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
        'test_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.persistent_workers=False',
        'test_dataloader.persistent_workers=False',
    ]


def scalars(work_dir):
    logs = [osp.join(work_dir, d, 'vis_data', 'scalars.json')
            for d in sorted(os.listdir(work_dir))
            if osp.isfile(osp.join(work_dir, d, 'vis_data', 'scalars.json'))]
    assert logs, os.listdir(work_dir)
    with open(logs[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_dist_train_quickstart_two_cpu_processes(repo_root, demo_data_root,
                                                 tmp_path):
    # 16 train images, 2 processes x batch 4: 2 iterations in one epoch
    work = str(tmp_path / 'work')
    out = run_script(repo_root, 'dist_train.sh', [
        QUICKSTART, '2', '--work-dir', work, '--cfg-options'
    ] + data_options(demo_data_root) + [
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=10',
        'train_dataloader.batch_size=4', 'default_hooks.logger.interval=1'])
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-5000:])
    log = out.stdout + out.stderr
    assert "'backend': 'gloo'" in log or 'backend=gloo' in log or \
        'gloo' in log, log[-3000:]
    assert 'Distributed launcher: pytorch' in log, log[-3000:]
    assert 'Distributed training: True' in log
    train = [r for r in scalars(work) if 'loss' in r]
    assert [r['iter'] for r in train] == [1, 2]
    ckpt = torch.load(osp.join(work, 'epoch_1.pth'), map_location='cpu',
                      weights_only=True)
    assert ckpt['meta']['iter'] == 2
    # saved without the DDP prefix, plain BatchNorm names
    assert not any(k.startswith('module.') for k in ckpt['state_dict'])


def test_dist_test_matches_one_process(repo_root, demo_data_root, golden_dir,
                                       tmp_path, load_tool):
    ckpt = osp.join(golden_dir, TRAINED)
    opts = data_options(demo_data_root)
    one = str(tmp_path / 'one')
    cwd = os.getcwd()
    os.chdir(repo_root)
    try:
        load_tool('test').main([QUICKSTART, ckpt, '--work-dir', one,
                                '--cfg-options'] + opts +
                               ['visualizer.name=dist_test_one'])
    finally:
        os.chdir(cwd)
    two = str(tmp_path / 'two')
    out = run_script(repo_root, 'dist_test.sh',
                     [QUICKSTART, ckpt, '2', '--work-dir', two,
                      '--cfg-options'] + opts)
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-5000:])

    def metrics(work):
        # LoggerHook writes the test metrics to <work>/<time>/<time>.json
        runs = [d for d in os.listdir(work)
                if osp.isfile(osp.join(work, d, d + '.json'))]
        assert len(runs) == 1, os.listdir(work)
        with open(osp.join(work, runs[0], runs[0] + '.json')) as f:
            return json.load(f)

    m1, m2 = metrics(one), metrics(two)
    assert m1['coco/bbox_mAP'] > 0.1, m1  # a trained model, real detections
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75'):
        assert m2[key] == m1[key], (key, m1, m2)


def test_dist_train_refuses_a_busy_port(repo_root, tmp_path):
    with socket.socket() as busy:
        busy.bind(('', 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = run_script(repo_root, 'dist_train.sh', [QUICKSTART, '2'],
                         port=port, timeout=120)
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert f'port {port} is already in use' in last and 'PORT' in last


@pytest.mark.parametrize('gpus', ['0', 'two'])
def test_dist_scripts_refuse_a_bad_process_count(repo_root, gpus):
    out = run_script(repo_root, 'dist_test.sh', [QUICKSTART, 'x.pth', gpus],
                     timeout=60)
    assert out.returncode == 2
    assert 'GPUS must be a positive number' in out.stderr


@pytest.mark.parametrize('script',
                         ['dist_train.sh', 'dist_test.sh', 'slurm_train.sh'])
def test_dist_scripts_help(repo_root, tmp_path, script):
    out = subprocess.run(['bash', osp.join(repo_root, 'tools', script),
                          '--help'], cwd=str(tmp_path), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f'Usage: bash tools/{script}' in out.stdout
    assert list(tmp_path.iterdir()) == []


# ----------------------- backend and launch checks ------------------------
@pytest.fixture
def cfg(repo_root):
    return Config.fromfile(osp.join(repo_root, QUICKSTART))


def test_configs_sync_bn_and_no_fixed_backend(cfg):
    assert cfg.sync_bn == 'torch'
    assert cfg.env_cfg.dist_cfg.get('backend') is None


def test_single_process_is_untouched(cfg):
    before = cfg.to_dict()
    setup_distributed(cfg, 'none')
    assert cfg.to_dict() == before


def test_nccl_without_gpus_says_what_to_set(cfg, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg.env_cfg.dist_cfg.backend = 'nccl'
    with pytest.raises(RuntimeError, match=r"backend='nccl' needs CUDA GPUs"
                       r".*env_cfg.dist_cfg.backend=gloo"):
        setup_distributed(cfg, 'pytorch')


def test_more_processes_than_gpus_says_what_to_set(cfg, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '2')
    with pytest.raises(RuntimeError, match=r'2 processes per node .* only 1 '
                       r'CUDA GPU.*set GPUS .* at most 1'):
        setup_distributed(cfg, 'pytorch')


def test_backend_follows_the_device(cfg, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 8)
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '8')
    assert default_backend() == 'nccl'
    setup_distributed(cfg, 'pytorch')
    # GPUs: mmengine converts to torch's SyncBN, mmengine initialises nccl;
    # the wrapper only sets the weights' layout before DDP is built
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert cfg.sync_bn == 'torch'
    assert cfg.model_wrapper_cfg == dict(
        type='DAMOYOLODistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=False, memory_format='channels_last')


def test_cpu_processes_get_gloo_and_the_cpu_wrapper(cfg, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    # the process group is set up by torchrun's environment
    monkeypatch.setattr(torch.distributed, 'is_initialized', lambda: True)
    setup_distributed(cfg, 'pytorch')
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.sync_bn is None  # converted by the wrapper instead
    # SyncBN and channels-last (the quickstart's MemoryFormatHook) are set
    # up by the wrapper, before DDP is built
    assert cfg.model_wrapper_cfg == dict(
        type='DAMOYOLODistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=False, memory_format='channels_last',
        cpu_sync_bn=True)


def test_cpu_processes_need_torchrun(cfg, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(RuntimeError, match='start the processes with '
                       'torchrun'):
        setup_distributed(cfg, 'pytorch')
    with pytest.raises(RuntimeError, match='--launcher slurm on a machine '
                       'without GPUs'):
        setup_distributed(cfg, 'slurm')


def test_dist_train_nccl_without_gpus_ends_with_the_fix(repo_root):
    """The refusal of a failed process closes torchrun's summary."""
    if torch.cuda.is_available():
        pytest.skip('this machine has GPUs')
    out = run_script(repo_root, 'dist_train.sh', [
        QUICKSTART, '2', '--cfg-options', 'env_cfg.dist_cfg.backend=nccl'],
        timeout=300)
    assert out.returncode != 0
    tail = '\n'.join(out.stderr.strip().splitlines()[-4:])
    assert "backend='nccl' needs CUDA GPUs" in tail, tail
    assert 'env_cfg.dist_cfg.backend=gloo' in tail
