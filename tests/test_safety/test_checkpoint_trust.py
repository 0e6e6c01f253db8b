"""Checkpoints load with weights_only=True; full unpickling is an explicit
per-file opt-in; importing damoyolo_mm leaves torch.load as it is."""
import os
import os.path as osp
import pickletools
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import Runner, load_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from damoyolo_mm.utils import (TRUST_ENV, UntrustedPickleError,
                               load_checkpoint_file, trust_pickle)
from safety_helpers import toy_runner_kwargs

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class _Payload:
    """Pickles as ``os.system('touch <marker>')``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


class _GetattrPayload:
    """Pickles as ``getattr(HistoryBuffer, '__init__')``."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


def _globals(path):
    """Every global a torch checkpoint names (protocol 2: GLOBAL ops)."""
    with zipfile.ZipFile(path) as z:
        data = z.read(next(n for n in z.namelist()
                           if n.endswith('data.pkl')))
    return {arg.replace(' ', '.').replace('__builtin__.', 'builtins.')
            for op, arg, _ in pickletools.genops(data) if op.name == 'GLOBAL'}


def _evil(path, marker, state_dict=None):
    torch.save(dict(meta=dict(note=_Payload(marker)),
                    state_dict=state_dict or {}), path)


def test_import_replaces_no_torch_loader():
    """torch.load stays torch's; mmengine's loaders are registered again,
    wrapped (test_checkpoint_metadata.py), and load the same data."""
    code = textwrap.dedent("""
        import torch
        load = torch.load
        import damoyolo_mm
        assert torch.load is load
        print('unchanged')
    """)
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == 'unchanged'


def test_mmengine_checkpoints_load_weights_only(tmp_path):
    """A checkpoint saved by plain mmengine (HistoryBuffer with pickled
    statistics methods, numpy scalars) loads under weights_only=True; a
    getattr on anything else is refused."""
    hub = dict(log_scalars={'train/loss': HistoryBuffer([1.0, 2.0], [1, 1])},
               runtime_info={'best_score': np.float64(0.5),
                             'iter': np.int64(3)})
    path = tmp_path / 'plain.pth'
    torch.save(dict(meta=dict(epoch=3, arr=np.arange(3)), message_hub=hub,
                    state_dict=dict(weight=torch.ones(2))), path)
    assert 'builtins.getattr' in _globals(path)
    ckpt = torch.load(path, weights_only=True)
    assert ckpt['message_hub']['log_scalars']['train/loss'].mean() == 1.5
    assert ckpt['message_hub']['runtime_info']['best_score'] == 0.5
    model = torch.nn.Module()
    model.weight = torch.nn.Parameter(torch.zeros(2))
    load_checkpoint(model, str(path), map_location='cpu')
    assert torch.equal(model.weight.data, torch.ones(2))

    bad = tmp_path / 'getattr.pth'
    torch.save(dict(x=_GetattrPayload()), bad)
    with pytest.raises(Exception, match='not allowed'):
        torch.load(bad, weights_only=True)


def test_our_checkpoints_need_no_getattr(tmp_path):
    """A Runner with AtomicCheckpointHook writes a checkpoint whose only
    non-tensor globals are HistoryBuffer and numpy's."""
    runner = Runner(**toy_runner_kwargs(
        tmp_path, train_cfg=dict(by_epoch=True, max_epochs=1),
        default_hooks=dict(checkpoint=dict(type='AtomicCheckpointHook',
                                           interval=1), logger=None),
        experiment_name='our_ckpt_no_getattr'))
    runner.message_hub.update_info('best_score', np.float64(0.25))
    runner.train()
    path = str(tmp_path / 'epoch_1.pth')
    # torch's own allow-list covers torch.*, OrderedDict and _codecs.encode
    found = {g for g in _globals(path) if not g.startswith(
        ('torch.', 'collections.OrderedDict', '_codecs.encode'))}
    assert 'builtins.getattr' not in found
    assert found <= {'mmengine.logging.history_buffer.HistoryBuffer',
                     'numpy._core.multiarray._reconstruct', 'numpy.ndarray',
                     'numpy.dtype', 'numpy._core.multiarray.scalar'}, found
    ckpt = torch.load(path, weights_only=True)
    buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer) and buf.current() == \
        runner.message_hub.get_scalar('train/loss').current()
    assert ckpt['message_hub']['runtime_info']['best_score'] == 0.25


def test_untrusted_file_is_refused_and_payload_not_run(tmp_path,
                                                       monkeypatch):
    marker = tmp_path / 'ran'
    path = str(tmp_path / 'evil.pth')
    _evil(path, marker)
    monkeypatch.delenv(TRUST_ENV, raising=False)
    with pytest.raises(UntrustedPickleError) as err:
        load_checkpoint_file(path)
    assert path in str(err.value) and '--trust-pickle' in str(err.value)
    assert TRUST_ENV in str(err.value)
    model = torch.nn.Linear(1, 1)
    with pytest.raises(UntrustedPickleError, match='refused to unpickle'):
        load_checkpoint(model, path)
    assert not marker.exists()

    # opt-in per file: the context manager, then the environment variable
    with trust_pickle(path):
        load_checkpoint(torch.nn.Module(), path, strict=False)
    assert marker.exists()
    marker.unlink()
    other = str(tmp_path / 'other.pth')
    _evil(other, marker)
    with trust_pickle(path):  # trusts `path` only
        with pytest.raises(UntrustedPickleError, match='refused to unpickle'):
            load_checkpoint(torch.nn.Module(), other)
    assert not marker.exists()
    assert CheckpointLoader._schemes[''].__name__ == 'load_from_local'
    monkeypatch.setenv(TRUST_ENV, other)
    load_checkpoint_file(other)
    assert marker.exists()


def _quickstart_options(root):
    return [
        f'test_dataloader.dataset.data_root={root}',
        f'test_evaluator.ann_file={root}annotations/instances_val.json',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
    ]


def test_tools_test_refuses_a_malicious_checkpoint(demo_data_root, tmp_path):
    marker = tmp_path / 'ran'
    path = str(tmp_path / 'evil.pth')
    _evil(path, marker)
    env = {k: v for k, v in os.environ.items() if k != TRUST_ENV}
    out = subprocess.run(
        [sys.executable, 'tools/test.py',
         'configs/quickstart/damoyolo_quickstart.py', path, '--work-dir',
         str(tmp_path / 'work'), '--cfg-options'] +
        _quickstart_options(demo_data_root),
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode != 0
    assert not marker.exists(), 'the payload ran'
    last = out.stderr.strip().splitlines()[-1]
    assert path in last and '--trust-pickle' in last, out.stderr[-2000:]


def test_numpy1_era_checkpoints_load_weights_only(tmp_path):
    """Checkpoints written with numpy 1.x (e.g. mmdet's released weights)
    name ``numpy.core.multiarray``; they load without any flag too."""
    new = tmp_path / 'numpy2.pth'
    torch.save(dict(meta=dict(a=np.arange(3), s=np.float64(2.5)),
                    message_hub=dict(log_scalars={
                        'loss': HistoryBuffer([1.0, 3.0], [1, 1])}),
                    state_dict={'w': torch.ones(2)}), new)
    old = tmp_path / 'numpy1.pth'
    with zipfile.ZipFile(new) as src, zipfile.ZipFile(old, 'w') as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith('data.pkl'):
                data = data.replace(b'numpy._core.multiarray',
                                    b'numpy.core.multiarray')
            dst.writestr(info, data)
    assert 'numpy.core.multiarray._reconstruct' in _globals(old)
    ckpt = torch.load(old, weights_only=True)
    assert ckpt['meta']['a'].tolist() == [0, 1, 2]
    assert ckpt['meta']['s'] == 2.5
    assert ckpt['message_hub']['log_scalars']['loss'].mean() == 2.0
