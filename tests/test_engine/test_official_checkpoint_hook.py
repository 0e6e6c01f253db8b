"""load_from with an official checkpoint in a Runner whose config has the
EMA hook (which reads checkpoint['state_dict'] before the model loads)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from damoyolo_mm.models.checkpoint import (StateDictMismatchError,
                                           coco_dataset_meta,
                                           convert_official_state_dict)
from damoyolo_mm.variants import variant_config


@pytest.fixture()
def runner(tmp_path):
    cfg = Config.fromfile(variant_config('ns'))
    cfg.work_dir = str(tmp_path)
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    runner.call_hook('before_run')  # EMAHook builds its averaged model
    return runner


def test_load_from_official_with_ema(runner, golden_dir):
    hooks = [type(h).__name__ for h in runner.hooks]
    assert hooks.index('OfficialCheckpointHook') < hooks.index('EMAHook')
    path = osp.join(golden_dir, 'Ns_ckpt_fp16.pth')
    runner.load_checkpoint(path)
    official = torch.load(path, weights_only=True)['model']
    expected = convert_official_state_dict(official,
                                           runner.model.state_dict())
    ema = [h for h in runner.hooks if type(h).__name__ == 'EMAHook'][0]
    for model in (runner.model, ema.ema_model.module):
        got = model.state_dict()
        for k, v in expected.items():
            assert torch.equal(got[k], v), k


def test_load_from_other_variant_names_it(runner, golden_dir):
    with pytest.raises(StateDictMismatchError) as e:
        runner.load_checkpoint(osp.join(golden_dir, 'Nm_ckpt_fp16.pth'))
    assert str(e.value).splitlines()[-1].strip().startswith(
        "the checkpoint fits the released variant 'nm' "
        '(configs/damoyolo_nm_coco.py)')


def test_hook_writes_mmengine_layout(runner, golden_dir):
    from damoyolo_mm.engine.hooks import OfficialCheckpointHook
    ckpt = torch.load(osp.join(golden_dir, 'Ns_ckpt_fp16.pth'),
                      weights_only=True)
    OfficialCheckpointHook().after_load_checkpoint(runner, ckpt)
    assert set(ckpt) == {'state_dict', 'meta'}
    assert ckpt['meta']['dataset_meta'] == coco_dataset_meta()
    assert sorted(ckpt['state_dict']) == sorted(runner.model.state_dict())
    # an mmengine checkpoint is left alone
    ours = dict(state_dict=dict(ckpt['state_dict']), meta={})
    OfficialCheckpointHook().after_load_checkpoint(runner, ours)
    assert ours['meta'] == {}
