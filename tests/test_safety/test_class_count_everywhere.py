"""Every config checks the head's class count against the dataset (was:
only the fine-tuning configs; elsewhere an assigner error naming neither,
or silent training)."""
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from safety_helpers import REPO, tiny_config

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, osp.join(REPO, 'tests', 'test_configs'))
from config_snapshot import config_files  # noqa: E402


@pytest.mark.parametrize('rel_path', [
    p for p in config_files()
    if p.startswith('configs/') and not p.startswith(('configs/nas/',
                                                      'configs/deploy/'))
])
def test_every_config_runs_the_check_and_the_locking_runner(rel_path):
    cfg = Config.fromfile(osp.join(REPO, rel_path),
                          import_custom_modules=False)
    assert cfg.default_hooks.class_count_check == dict(
        type='ClassCountCheckHook'), rel_path
    assert cfg.runner_type == 'DAMOYOLORunner', rel_path


@pytest.mark.parametrize('num_classes', [3, 7])
def test_tools_train_names_head_classes_and_file(demo_data_root, tmp_path,
                                                 num_classes):
    config = tmp_path / 'cfg.py'
    config.write_text(tiny_config(demo_data_root))
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join([HERE, REPO])
    out = subprocess.run(
        [sys.executable, 'tools/train.py', str(config), '--work-dir',
         str(tmp_path / 'work'), '--cfg-options',
         f'model.bbox_head.num_classes={num_classes}'], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=600)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    ann = osp.join(demo_data_root, 'annotations/instances_train.json')
    assert last.startswith('damoyolo_mm.engine.hooks.class_count_check_hook.'
                           'ClassCountMismatchError: model.bbox_head.'
                           f'num_classes is {num_classes}, but the train '
                           f'dataset ({ann}) has 5 classes'), last
    assert f'the annotation file {ann} declares 5 categories' in last
    assert not (tmp_path / 'work' / 'epoch_1.pth').exists()
