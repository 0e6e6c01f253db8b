"""Train the projects' demo configs on the embedded demo data: through
tools/train.py, through `mim train`, and a few optimizer steps on one
fixed batch (loss goes down) followed by `predict`."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from projects_helpers import (DEMO_CONFIGS, REPO_ROOT, batch_loss,
                              check_predictions, fixed_demo_batch,
                              num_classes_of, recalibrate_bn,
                              tiny_run_options)


def _train_losses(work_dir):
    """Per-iteration training losses from the run's text log (the scalar
    log may go to an earlier run's folder: the config names its
    visualizer, and mmengine reuses a named instance within a process)."""
    logs = []
    for root, _, files in os.walk(work_dir):
        logs += [osp.join(root, f) for f in files if f.endswith('.log')]
    assert len(logs) == 1, logs
    with open(logs[0]) as f:
        text = f.read()
    return [
        float(v) for v in re.findall(
            r'Epoch\(train\)\s+\[\d+\]\[\d+/\d+\].*?\sloss: (\S+)', text)
    ]


# zerohead_resnet trains through tools/train.py in the mim test below
@pytest.mark.parametrize('key',
                         ['repgfpn_retinanet', 'tinynas_faster_rcnn_l20'])
def test_train_tool_runs_demo_config(key, demo_data_root, tmp_path,
                                     load_tool):
    """2 iterations through tools/train.py main(), no validation (the mim
    test below validates)."""
    path = DEMO_CONFIGS[key]
    cfg = Config.fromfile(path)
    work_dir = str(tmp_path / 'work')
    load_tool('train').main([
        osp.relpath(path, os.getcwd()), '--work-dir', work_dir,
        '--cfg-options', *tiny_run_options(cfg, demo_data_root)
    ])
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    losses = _train_losses(work_dir)
    assert len(losses) == 2, losses
    assert all(torch.isfinite(torch.tensor(losses))), losses
    ckpt = torch.load(osp.join(work_dir, 'epoch_1.pth'), map_location='cpu',
                      weights_only=True)
    assert ckpt['meta']['iter'] == 2
    assert ckpt['meta']['dataset_meta']['classes'] == tuple(
        cfg.metainfo.classes)


@pytest.mark.parametrize('key,lr', [
    ('repgfpn_retinanet', 0.02),
    ('tinynas_faster_rcnn_nas', 0.002),
    ('zerohead_resnet', 0.02),
])
def test_fixed_batch_loss_decreases_then_predict(key, lr, demo_data_root):
    """A few SGD steps on one demo batch lower its loss; `predict` then
    returns valid DetDataSamples."""
    from mmdet.registry import MODELS
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(DEMO_CONFIGS[key])
    batch = fixed_demo_batch(cfg, demo_data_root)
    assert sum(len(s.gt_instances) for s in batch['data_samples']) > 0
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    # the config's own optimizer wrapper (SGD, gradient clipping) at a
    # fixed lr: no warm-up in a 4-step run
    optim_cfg = cfg.optim_wrapper.copy()
    optim_cfg.optimizer = dict(optim_cfg.optimizer, lr=lr)
    optim = build_optim_wrapper(model, optim_cfg)
    first = batch_loss(model, batch)
    step_losses = []
    for step in range(4):
        torch.manual_seed(step + 1)
        log_vars = model.train_step(batch, optim)
        step_losses.append(float(torch.as_tensor(log_vars['loss']).detach()))
    last = batch_loss(model, batch)
    assert all(torch.isfinite(torch.tensor(step_losses + [first, last])))
    print(f'\n{key}: first {first:.4f} steps {step_losses} last {last:.4f}')
    assert last < 0.99 * first, (first, step_losses, last)

    recalibrate_bn(model, batch)
    head = model.roi_head if hasattr(model, 'roi_head') else model.bbox_head
    head.test_cfg['score_thr'] = 0.0  # every candidate, to check them all
    with torch.no_grad():
        data = model.data_preprocessor(batch, False)
        results = model(**data, mode='predict')
    n = check_predictions(results, num_classes_of(cfg.model), batch)
    assert n > 0


def test_mim_train_project_config(demo_data_root, tmp_path):
    """`mim train damoyolo_mm projects/<x>/configs/<y>.py` from the repo
    root (a path relative to the cwd needs no reinstall)."""
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    if not osp.isfile(mim):
        pytest.fail(f'mim not found next to {sys.executable}')
    path = DEMO_CONFIGS['zerohead_resnet']
    rel = osp.relpath(path, REPO_ROOT)
    assert rel.startswith('projects' + os.sep)
    cfg = Config.fromfile(path)
    work_dir = str(tmp_path / 'mim_work')
    env = dict(os.environ)
    # the working tree's package, not an older installed copy
    env['PYTHONPATH'] = os.pathsep.join(
        [REPO_ROOT] + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
    env['OMP_NUM_THREADS'] = '2'
    out = subprocess.run(
        [mim, 'train', 'damoyolo_mm', rel, '--work-dir', work_dir,
         '--cfg-options', *tiny_run_options(cfg, demo_data_root,
                                            validate=True)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth')), out.stdout[-2000:]
    losses = _train_losses(work_dir)
    assert len(losses) == 2 and all(
        torch.isfinite(torch.tensor(losses))), losses
