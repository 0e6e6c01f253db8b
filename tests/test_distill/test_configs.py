"""The distillation configs in configs/distill/."""
import os.path as osp

import pytest
import torch
from distill_helpers import make_batch
from mmdet.registry import HOOKS, MODELS
from mmengine.config import Config

# (config, student neck, teacher neck, student backbone, teacher backbone)
PAIRS = {
    'damoyolo_m_distill_from_l.py':
    ([128, 256, 512], [128, 256, 512], 'TinyNASCSP', 'TinyNASCSP'),
    'damoyolo_s_distill_from_m.py':
    ([128, 256, 512], [128, 256, 512], 'TinyNASRes', 'TinyNASCSP'),
    'damoyolo_t_distill_from_s.py':
    ([64, 128, 256], [128, 256, 512], 'TinyNASRes', 'TinyNASRes'),
    'damoyolo_ns_distill_from_nm.py':
    ([40, 80, 160], [64, 128, 256], 'TinyNASMob', 'TinyNASMob'),
}


def test_registered_by_package_import():
    import damoyolo_mm  # noqa: F401
    for name in ('DistillWeightHook', 'DistillGradClipHook'):
        assert HOOKS.get(name) is not None, name
    for name in ('DAMOYOLODistiller', 'NeckDistillLoss', 'CWDLoss',
                 'MimicLoss', 'MGDLoss'):
        assert MODELS.get(name) is not None, name


DEFAULT_BALANCE = dict(type='grad_norm', max_ratio=0.5)


def _load(repo_root, name):
    return Config.fromfile(osp.join(repo_root, 'configs', 'distill', name))


@pytest.mark.parametrize('name', sorted(PAIRS))
def test_config_pairs(repo_root, name):
    s_ch, t_ch, s_bb, t_bb = PAIRS[name]
    cfg = _load(repo_root, name)
    model = cfg.model
    assert model.type == 'DAMOYOLODistiller'
    assert model.teacher_ckpt is None
    # default: bounded prediction distillation (docs/distill.md)
    assert model.distill_loss is None
    assert model.head_distill.type == 'HeadDistillLoss'
    assert model.balance == DEFAULT_BALANCE
    assert model.student.type == 'DAMOYOLO'
    assert model.student.neck.out_channels == s_ch
    assert model.student.backbone.type == s_bb
    assert osp.isfile(model.teacher_cfg), model.teacher_cfg
    teacher = Config.fromfile(model.teacher_cfg).model
    assert teacher.neck.out_channels == t_ch
    assert teacher.backbone.type == t_bb
    # the student recipe is the plain student config's
    plain = Config.fromfile(osp.join(
        repo_root, 'configs', name.split('_distill_from_')[0] + '_coco.py'))
    assert model.student.to_dict() == plain.model.to_dict()
    # the distillation hooks first (custom_hooks.0 is the weight hook, for
    # the command line of the official setting), then the student's
    hooks = [h['type'] for h in cfg.custom_hooks]
    assert hooks[:2] == ['DistillWeightHook', 'DistillGradClipHook']
    assert hooks[2:] == [h['type'] for h in plain.get('custom_hooks', [])]
    weight = cfg.custom_hooks[0]
    assert (weight.start_weight, weight.end_weight) == (1.0, 1.0)
    assert weight.get('span') is None
    assert cfg.custom_hooks[1]['max_norm'] == 30.


def _build_and_step(repo_root, name, tmp_path, options=None):
    cfg = _load(repo_root, name)
    teacher_cfg = Config.fromfile(cfg.model.teacher_cfg).model
    torch.manual_seed(0)
    teacher = MODELS.build(teacher_cfg)
    ckpt = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': teacher.state_dict()}, ckpt)
    del teacher
    cfg.merge_from_dict({'model.teacher_ckpt': ckpt, **(options or {})})
    model = MODELS.build(cfg.model)
    inputs, samples = make_batch(batch_size=2, size=64)
    model.train()
    losses = model.loss(inputs, samples)
    keys = [k for k in losses if k.startswith('loss_distill')]
    assert keys, losses.keys()
    for key in keys:
        assert torch.isfinite(losses[key]) and losses[key] > 0, key
    return model, losses


def test_nano_pair_builds_and_trains(repo_root, tmp_path):
    model, losses = _build_and_step(repo_root,
                                    'damoyolo_ns_distill_from_nm.py',
                                    tmp_path)
    assert {'loss_distill_cls', 'loss_distill_box'} <= set(losses)
    assert model.distill_loss is None


OFFICIAL = ('model.distill_loss=cwd', 'model.head_distill=None',
            'model.balance=None', 'custom_hooks.0.end_weight=0.1')


@pytest.mark.parametrize('name', sorted(PAIRS) + [
    'damoyolo_demo_ns_distill_from_nm.py',
    'damoyolo_demo_res_distill_from_csp.py'])
def test_official_setting_from_the_command_line(repo_root, name):
    # the --cfg-options of configs/distill/_base_/distill.py, parsed as
    # tools/train.py parses them, give DAMO-YOLO's recipe in every config
    from mmengine.config import DictAction
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(['--cfg-options', *OFFICIAL])
    cfg = _load(repo_root, name)
    cfg.merge_from_dict(args.cfg_options)
    assert cfg.model.distill_loss == 'cwd'
    assert cfg.model.head_distill is None and cfg.model.balance is None
    weight, clip = cfg.custom_hooks[:2]
    assert weight.type == 'DistillWeightHook'
    assert (weight.start_weight, weight.end_weight) == (1.0, 0.1)
    assert weight.get('span') is None
    assert clip.type == 'DistillGradClipHook' and clip.max_norm == 30.


def test_official_setting_builds_and_trains(repo_root, tmp_path):
    model, losses = _build_and_step(
        repo_root, 'damoyolo_ns_distill_from_nm.py', tmp_path,
        {'model.distill_loss': 'cwd', 'model.head_distill': None,
         'model.balance': None})
    assert [k for k in losses if k.startswith('loss_distill')] == [
        'loss_distill']
    assert model.head_distill is None and model.grad_balance is None
    assert type(model.distill_loss.feature_loss).__name__ == 'CWDLoss'
    assert [m.weight.shape[:2] for m in model.distill_loss.align_module] == [
        (64, 40), (128, 80), (256, 160)]


def test_missing_teacher_ckpt_is_a_clear_error(repo_root):
    cfg = _load(repo_root, 'damoyolo_ns_distill_from_nm.py')
    with pytest.raises(ValueError, match=r'model\.teacher_ckpt'):
        MODELS.build(cfg.model)


def test_teacher_checkpoint_of_another_architecture(repo_root, tmp_path):
    # an Ns checkpoint given as the teacher of the demo pair (Nm teacher)
    cfg = _load(repo_root, 'damoyolo_demo_ns_distill_from_nm.py')
    student = MODELS.build(cfg.model.student)
    path = str(tmp_path / 'ns_epoch_55.pth')
    torch.save({'meta': {}, 'state_dict': student.state_dict()}, path)
    model = dict(cfg.model, teacher_ckpt=path)
    with pytest.raises(RuntimeError) as err:
        MODELS.build(model)
    msg = str(err.value)
    assert 'ns_epoch_55.pth' in msg and 'damoyolo_demo_nm_teacher.py' in msg
    assert 'does not match the teacher config' in msg
    assert ('the checkpoint is DAMO-YOLO-NS, the teacher config builds '
            'DAMO-YOLO-NM') in msg, msg


@pytest.mark.heavy
@pytest.mark.parametrize('name', sorted(set(PAIRS) - {
    'damoyolo_ns_distill_from_nm.py'}))
def test_full_pairs_build_and_train(repo_root, tmp_path, name):
    _build_and_step(repo_root, name, tmp_path)


def test_demo_configs(repo_root):
    cfg = _load(repo_root, 'damoyolo_demo_ns_distill_from_nm.py')
    plain = _load(repo_root, 'damoyolo_demo_ns.py')
    teacher = Config.fromfile(cfg.model.teacher_cfg)
    assert osp.basename(cfg.model.teacher_cfg) == 'damoyolo_demo_nm_teacher.py'
    assert cfg.model.student.to_dict() == plain.model.to_dict()
    assert plain.model.bbox_head.num_classes == 5
    assert teacher.model.bbox_head.num_classes == 5
    assert plain.model.neck.out_channels == [40, 80, 160]
    assert teacher.model.neck.out_channels == [64, 128, 256]
    assert teacher.model.backbone.structure == 'tinynas_nano_middle'
    # same data and recipe for teacher, baseline and distilled student;
    # the teacher trains twice as long
    for key in ('train_dataloader', 'val_dataloader', 'optim_wrapper'):
        assert cfg[key] == plain[key] == teacher[key], key
    for key in ('train_cfg', 'param_scheduler'):
        assert cfg[key] == plain[key], key
    assert teacher.train_cfg.max_epochs == 2 * plain.train_cfg.max_epochs
    assert [h['type'] for h in cfg.custom_hooks][:2] == [
        'DistillWeightHook', 'DistillGradClipHook']
    assert cfg.model.balance == DEFAULT_BALANCE
    # the heterogeneous pair's teacher shares the Nm teacher's schedule
    csp = _load(repo_root, 'damoyolo_demo_csp_teacher.py')
    assert csp.model.backbone.type == 'TinyNASCSP'
    for key in ('train_cfg', 'param_scheduler', 'custom_hooks'):
        assert csp[key] == teacher[key], key


def test_teacher_config_path_resolution(repo_root, tmp_path, monkeypatch):
    from damoyolo_mm.models.distillers.damoyolo_distiller import \
        _teacher_model_cfg
    monkeypatch.chdir(tmp_path)  # relative paths fall back to the repo root
    model = _teacher_model_cfg('configs/damoyolo_nm_coco.py')
    assert model.neck.out_channels == [64, 128, 256]
    with pytest.raises(FileNotFoundError, match='damoyolo_xx_coco.py'):
        _teacher_model_cfg('configs/damoyolo_xx_coco.py')
    with pytest.raises(TypeError, match='teacher_cfg'):
        _teacher_model_cfg(42)


def test_train_tool_takes_short_teacher_ckpt(repo_root, load_tool):
    """`--cfg-options teacher_ckpt=PATH` sets model.teacher_ckpt of a
    distillation config and is refused, naming the config, elsewhere."""
    train_tool = load_tool('train')
    distill = osp.join(repo_root, 'configs', 'distill',
                       'damoyolo_s_distill_from_m.py')
    cfg = train_tool.build_cfg(train_tool.parse_args(
        [distill, '--cfg-options', 'teacher_ckpt=work_dirs/m/epoch_300.pth']))
    assert cfg.model.teacher_ckpt == 'work_dirs/m/epoch_300.pth'
    cfg = train_tool.build_cfg(train_tool.parse_args([distill]))
    assert cfg.model.teacher_ckpt is None
    plain = osp.join(repo_root, 'configs', 'damoyolo_s_coco.py')
    with pytest.raises(ValueError, match='damoyolo_s_coco.py.*takes no teacher'):
        train_tool.build_cfg(train_tool.parse_args(
            [plain, '--cfg-options', 'teacher_ckpt=x.pth']))
