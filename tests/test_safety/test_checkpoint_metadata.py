"""Checkpoint metadata is data, never code; a refused checkpoint names the
file and the opt-in of the path that loaded it.

Two payloads, checkpoints holding nothing but strings and tensors (they
load under ``weights_only=True``) whose config text runs ``os.system`` or
writes a file, go through every entry point that reads a checkpoint:
nothing of them runs.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

from damoyolo_mm.utils import TRUST_ENV, UntrustedPickleError, trust_pickle
from damoyolo_mm.utils.checkpoint_metadata import (is_registered,
                                                   literal_gpu_ids)
from safety_helpers import REPO, tiny_config, toy_runner_kwargs

HERE = osp.dirname(osp.abspath(__file__))
NS = osp.join(REPO, 'configs', 'damoyolo_ns_coco.py')


def _code(kind, marker):
    if kind == 'os.system':
        return f"import os\nos.system('touch {marker}')\n"
    return f"open({str(marker)!r}, 'w').write('ran')\n"


def _string_checkpoint(path, marker, kind, state_dict, **meta):
    """Only strings, numbers and tensors: loads with weights_only=True."""
    code = _code(kind, marker)
    torch.save(
        dict(meta=dict(dict(epoch=2, iter=6, seed=0, config=code, cfg=code),
                       **meta),
             state_dict=state_dict,
             message_hub=dict(log_scalars={}, runtime_info=dict(cfg=code),
                              resumed_keys={})), path)
    return str(path)


class _Pickled:
    """Pickles as ``os.system('touch <marker>')``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def _pickled_checkpoint(path, marker, state_dict=None):
    torch.save(dict(meta=dict(note=_Pickled(marker)),
                    state_dict=state_dict or {}), path)
    return str(path)


@pytest.fixture(scope='module')
def ns_state():
    cfg = Config.fromfile(NS)
    return MODELS.build(cfg.model).state_dict()


KINDS = ['os.system', 'open']


def test_loaders_are_registered_data_only_and_torch_load_untouched():
    code = ('import torch\nload = torch.load\nimport damoyolo_mm\n'
            'from damoyolo_mm.utils.checkpoint_metadata import '
            'is_registered\n'
            'from mmengine.runner.checkpoint import CheckpointLoader as C\n'
            'assert torch.load is load\n'
            'assert all(is_registered(p) for p in C._schemes), C._schemes\n'
            "assert C._schemes[''].__name__ == 'load_from_local'\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == 'ok'


@pytest.mark.parametrize('kind', KINDS)
def test_mmengine_loading_drops_config_text(tmp_path, kind, ns_state):
    marker = tmp_path / 'ran'
    path = _string_checkpoint(tmp_path / 'evil.pth', marker, kind,
                              ns_state)
    ckpt = _load_checkpoint(path, map_location='cpu')
    assert 'config' not in ckpt['meta'] and 'cfg' not in ckpt['meta']
    assert 'cfg' not in ckpt['message_hub']['runtime_info']
    assert ckpt['meta']['epoch'] == 2
    model = MODELS.build(Config.fromfile(NS).model)
    load_checkpoint(model, path, map_location='cpu')
    assert not marker.exists()


def test_gpu_ids_are_read_as_a_literal_only(tmp_path):
    assert literal_gpu_ids('gpu_ids = [0, 1]\nx = 1') == [0, 1]
    assert literal_gpu_ids('gpu_ids = range(0, 4)') == [0, 1, 2, 3]
    assert literal_gpu_ids("gpu_ids = __import__('os').getpid()") is None
    assert literal_gpu_ids('def f(:') is None
    # a file asking for an absurd list is not read (nor built in memory)
    assert literal_gpu_ids('gpu_ids = range(10**12)') is None
    assert literal_gpu_ids('gpu_ids = range(1000000000000)') is None
    marker = tmp_path / 'ran'
    path = str(tmp_path / 'g.pth')
    torch.save(dict(meta=dict(config='gpu_ids = [0, 1]\n' +
                              _code('os.system', marker))), path)
    ckpt = _load_checkpoint(path)
    assert ckpt['meta']['config'] == 'gpu_ids = [0, 1]\n'
    assert not marker.exists()


def _toy_runner(work_dir, **kwargs):
    from mmengine.runner import Runner
    return Runner(**toy_runner_kwargs(
        work_dir, train_cfg=dict(by_epoch=True, max_epochs=3),
        default_hooks=dict(checkpoint=None, logger=None), **kwargs))


@pytest.mark.parametrize('kind', KINDS)
def test_runner_resume_and_load_from_run_no_config_text(tmp_path, kind):
    marker = tmp_path / 'ran'
    state = {'fc.weight': torch.zeros(1, 2), 'fc.bias': torch.zeros(1)}
    path = _string_checkpoint(tmp_path / 'evil.pth', marker, kind, state)
    runner = _toy_runner(tmp_path / 'w', resume=True, load_from=path,
                         experiment_name=f'resume_{kind}')
    runner.train()
    assert runner.iter == 6 + 2 and runner.epoch == 3
    assert not marker.exists(), 'the config text of the checkpoint ran'
    # load_from without resume
    runner = _toy_runner(tmp_path / 'w1', load_from=path,
                         experiment_name=f'load_from_{kind}')
    runner.train()
    assert not marker.exists()
    # mmengine's GPU-count check still sees a literal gpu_ids
    gpu = _string_checkpoint(tmp_path / 'gpu.pth', marker, kind, state)
    ckpt = torch.load(gpu, weights_only=True)
    ckpt['meta']['config'] = 'gpu_ids = [0, 1]\n' + ckpt['meta']['config']
    torch.save(ckpt, gpu)
    runner = _toy_runner(tmp_path / 'w2', resume=True, load_from=gpu,
                         experiment_name=f'resume_gpu_{kind}')
    with pytest.raises(RuntimeError, match='Number of GPUs used'):
        runner.train()
    assert not marker.exists()


def _train_resume(config, work_dir, path):
    """``tools/train.py CONFIG --resume PATH`` in a subprocess, no file
    trusted through the environment."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env.pop(TRUST_ENV, None)
    env['PYTHONPATH'] = os.pathsep.join([HERE, REPO])
    return subprocess.run(
        [sys.executable, 'tools/train.py', str(config), '--work-dir',
         str(work_dir), '--resume', path], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize('kind', KINDS)
def test_tools_train_resume_runs_no_config_text(demo_data_root, tmp_path,
                                                kind):
    """The reported case: tools/train.py --resume evil.pth ran os.system."""
    marker = tmp_path / 'ran'
    config = tmp_path / 'cfg.py'
    config.write_text(tiny_config(demo_data_root))
    cfg = Config.fromfile(str(config))  # custom_imports: safety_helpers
    state = MODELS.build(cfg.model).state_dict()
    path = _string_checkpoint(tmp_path / 'evil.pth', marker, kind, state)
    out = _train_resume(config, tmp_path / 'work', path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert osp.isfile(tmp_path / 'work' / 'epoch_3.pth')
    assert not marker.exists(), 'the config text of the checkpoint ran'


@pytest.mark.parametrize('kind', KINDS)
def test_inferencer_and_init_detector_run_no_config_text(
        tmp_path, kind, ns_state):
    from mmdet.apis import DetInferencer, init_detector
    marker = tmp_path / 'ran'
    path = _string_checkpoint(tmp_path / 'evil.pth', marker, kind, ns_state)
    # no model config: mmengine would execute the checkpoint's config text
    with pytest.raises(ValueError, match='Cannot find the config'):
        DetInferencer(model=None, weights=path, device='cpu',
                      show_progress=False)
    assert not marker.exists(), 'DetInferencer ran the config text'
    inferencer = DetInferencer(model=NS, weights=path, device='cpu',
                               show_progress=False)
    assert inferencer.model.bbox_head.num_classes == 80
    init_detector(NS, path, device='cpu')
    assert not marker.exists()


@pytest.mark.parametrize('kind', KINDS)
def test_teacher_extract_and_convert_run_no_config_text(
        tmp_path, kind, ns_state, load_tool):
    from damoyolo_mm.converters import convert_official_checkpoint
    from damoyolo_mm.models.distillers.damoyolo_distiller import \
        load_teacher_weights
    marker = tmp_path / 'ran'
    path = _string_checkpoint(tmp_path / 'evil.pth', marker, kind, ns_state)
    teacher = MODELS.build(Config.fromfile(NS).model)
    load_teacher_weights(teacher, path)
    assert not marker.exists()
    # a distillation checkpoint -> tools/extract_student.py -> inferencer
    distill = _string_checkpoint(
        tmp_path / 'distill.pth', marker, kind,
        {f'student.{k}': v for k, v in ns_state.items()})
    tool = load_tool('extract_student')
    out = str(tmp_path / 'student.pth')
    assert tool.main([distill, out]) == 0
    from mmdet.apis import DetInferencer
    with pytest.raises(ValueError, match='Cannot find the config'):
        DetInferencer(model=None, weights=out, device='cpu',
                      show_progress=False)
    # the converter of official checkpoints reads it as data (and refuses
    # it: it is no official checkpoint)
    with pytest.raises(Exception):
        convert_official_checkpoint(path, str(tmp_path / 'conv.pth'))
    assert not marker.exists()


# --- the project's refusal message, Python APIs included -------------------


def _assert_python_message(text, path):
    assert text.startswith(f'{path}: refused to unpickle (it pickles '), text
    assert f"damoyolo_mm.utils.trust_pickle({path!r})" in text, text
    assert 'weights_only=False' not in text and '--trust-pickle' not in text


def test_python_apis_refuse_with_the_project_message(tmp_path):
    from mmdet.apis import DetInferencer, init_detector
    marker = tmp_path / 'ran'
    path = _pickled_checkpoint(tmp_path / 'evil.pth', marker)
    with pytest.raises(UntrustedPickleError) as err:
        load_checkpoint(torch.nn.Linear(1, 1), path)
    _assert_python_message(str(err.value), path)
    with pytest.raises(UntrustedPickleError) as err:
        init_detector(NS, path, device='cpu')
    _assert_python_message(str(err.value), path)
    with pytest.raises(UntrustedPickleError) as err:
        DetInferencer(model=NS, weights=path, device='cpu',
                      show_progress=False)
    _assert_python_message(str(err.value), path)
    with pytest.raises(UntrustedPickleError) as err:
        DetInferencer(model=None, weights=path, device='cpu',
                      show_progress=False)
    _assert_python_message(str(err.value), path)
    assert not marker.exists()
    # the opt-in it names works, for this file only
    with trust_pickle(path):
        load_checkpoint(torch.nn.Module(), path, strict=False)
    assert marker.exists()
    assert is_registered('')  # restored after the block
    assert CheckpointLoader._schemes[''].__name__ == 'load_from_local'


def test_teacher_refusal_names_the_teacher_opt_in(tmp_path, ns_state):
    from damoyolo_mm.models.distillers.damoyolo_distiller import \
        load_teacher_weights
    marker = tmp_path / 'ran'
    path = _pickled_checkpoint(tmp_path / 'teacher.pth', marker, ns_state)
    teacher = MODELS.build(Config.fromfile(NS).model)
    with pytest.raises(UntrustedPickleError) as err:
        load_teacher_weights(teacher, path)
    text = str(err.value)
    assert text.startswith(f'teacher checkpoint {path}: refused to unpickle '
                           '(it pickles '), text
    assert 'model.teacher_trust_pickle=True' in text
    assert '--trust-pickle' not in text and 'resume' not in text
    assert not marker.exists()
    load_teacher_weights(teacher, path, trust_pickle=True)
    assert marker.exists()


def test_tools_train_teacher_refusal(tmp_path):
    """tools/train.py ends a refused teacher with the teacher's opt-in (was:
    "the checkpoint to resume from" and --trust-pickle)."""
    marker = tmp_path / 'ran'
    path = _pickled_checkpoint(tmp_path / 'teacher.pth', marker)
    env = {k: v for k, v in os.environ.items() if k != TRUST_ENV}
    out = subprocess.run(
        [sys.executable, 'tools/train.py',
         'configs/distill/damoyolo_demo_ns_distill_from_nm.py', '--work-dir',
         str(tmp_path / 'work'), '--cfg-options', f'teacher_ckpt={path}'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(f'error: teacher checkpoint {path}: refused'), \
        out.stderr[-3000:]
    assert 'model.teacher_trust_pickle=True' in last
    assert '--trust-pickle' not in last
    assert not marker.exists()


def test_tools_train_resume_refusal_names_file_and_opt_in(
        demo_data_root, tmp_path):
    marker = tmp_path / 'ran'
    path = _pickled_checkpoint(tmp_path / 'evil.pth', marker)
    config = tmp_path / 'cfg.py'
    config.write_text(tiny_config(demo_data_root))
    out = _train_resume(config, tmp_path / 'work', path)
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(f'error: {path}: refused to unpickle'), last
    assert '--trust-pickle' in last and f'{TRUST_ENV}={path}' in last
    assert not marker.exists()


@pytest.mark.parametrize('kind', KINDS)
def test_deploy_model_building_runs_no_config_text(tmp_path, kind, ns_state):
    """tools/deploy.py builds the model to export with this function."""
    from damoyolo_mm.deploy.export import build_model
    marker = tmp_path / 'ran'
    path = _string_checkpoint(tmp_path / 'evil.pth', marker, kind, ns_state)
    model = build_model(NS, path)
    assert model.bbox_head.num_classes == 80
    assert not marker.exists()
