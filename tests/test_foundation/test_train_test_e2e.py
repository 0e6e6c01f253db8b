"""End to end: tools/train.py, tools/test.py and `mim train/test` on the
demo data (tiny runs: 2 iterations)."""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch

CONFIG = 'configs/quickstart/damoyolo_quickstart.py'


def _data_options(root):
    return [
        # the training set is wrapped in a MultiImageMixDataset (mosaic)
        f'train_dataloader.dataset.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        f'val_evaluator.ann_file={root}annotations/instances_val.json',
        f'test_evaluator.ann_file={root}annotations/instances_val.json',
    ]


def _two_iteration_options(root):
    # 16 train images, batch 8, one epoch -> exactly 2 iterations
    return _data_options(root) + [
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'train_dataloader.batch_size=8', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0', 'test_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'test_dataloader.persistent_workers=False',
        'default_hooks.logger.interval=1', 'randomness.seed=0'
    ]


@pytest.fixture(scope='module')
def trained(demo_data_root, repo_root, tmp_path_factory, load_tool):
    train_tool = load_tool('train')
    work = str(tmp_path_factory.mktemp('train_e2e'))
    cwd = os.getcwd()
    os.chdir(repo_root)
    try:
        # a visualizer name of its own: mmengine reuses a named instance (and
        # its log folder) across runs in one process
        train_tool.main([CONFIG, '--work-dir', work, '--cfg-options'] +
                        _two_iteration_options(demo_data_root) +
                        [f'visualizer.name=e2e_{osp.basename(work)}'])
    finally:
        os.chdir(cwd)
    return work


def test_train_tool_two_iterations(trained):
    ckpt_file = osp.join(trained, 'last_checkpoint')
    assert osp.isfile(ckpt_file)
    with open(ckpt_file) as f:
        ckpt_path = f.read().strip()
    ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=True)
    assert ckpt['meta']['iter'] == 2 and ckpt['meta']['epoch'] == 1
    # EMA weights are saved beside the model weights
    assert any(k.startswith('ema_') or '.ema' in k or 'ema_state_dict' == k
               for k in list(ckpt) + list(ckpt['state_dict']))
    logs = glob.glob(osp.join(trained, '*', 'vis_data', 'scalars.json'))
    assert logs, 'no scalar log written'
    with open(logs[0]) as f:
        records = [json.loads(line) for line in f if line.strip()]
    train_recs = [r for r in records if 'loss' in r]
    assert [r['iter'] for r in train_recs] == [1, 2]
    for r in train_recs:
        for key in ('loss_cls', 'loss_bbox', 'loss_dfl'):
            assert key in r and r[key] == r[key] and r[key] >= 0
    # the val loop ran after the epoch (2 iterations from scratch give no
    # detection above the score threshold, so CocoMetric has nothing to score)
    val = [r for r in records if 'loss' not in r and r.get('step') == 1]
    assert val, records


def _mim(args, cwd):
    mim = shutil.which('mim') or osp.join(osp.dirname(sys.executable), 'mim')
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    return subprocess.run([mim] + args, cwd=cwd, capture_output=True,
                          text=True, timeout=600, env=env)


def test_mim_train_and_test_by_config_name(demo_data_root, trained,
                                           tmp_path):
    """From a directory outside the clone, mim finds the config by its name
    inside the installed package and runs our tools/train.py / test.py."""
    work = str(tmp_path / 'mim_work')
    out = _mim(['train', 'damoyolo_mm', osp.basename(CONFIG), '--work-dir',
                work, '--cfg-options'] +
               _two_iteration_options(demo_data_root) +
               ['train_cfg.val_interval=10'], cwd=str(tmp_path))
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
    assert 'we find the config file in codebase damoyolo_mm' in out.stdout
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))

    test_work = str(tmp_path / 'mim_test')
    out = _mim(['test', 'damoyolo_mm', osp.basename(CONFIG), '--checkpoint',
                osp.join(work, 'epoch_1.pth'), '--work-dir', test_work,
                '--show-dir', 'vis', '--cfg-options'] +
               _data_options(demo_data_root) +
               ['test_dataloader.num_workers=0',
                'test_dataloader.persistent_workers=False'], cwd=str(tmp_path))
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
    assert 'Epoch(test)' in out.stdout + out.stderr
    drawn = glob.glob(osp.join(test_work, '*', 'vis', '*.jpg'))
    assert len(drawn) == 8  # every val image of the small demo set
