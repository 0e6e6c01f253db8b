"""The plugin registers its modules into mmdet's registries on import."""
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
from mmdet.registry import MODELS, TASK_UTILS

import damoyolo_mm
from damoyolo_mm.version import __version__, version_info


def test_version():
    assert damoyolo_mm.__version__ == __version__
    assert version_info[:2] == tuple(int(x) for x in __version__.split('.'))[:2]


@pytest.mark.parametrize('registry, name', [
    (MODELS, 'TinyNASRes'),
    (MODELS, 'TinyNASCSP'),
    (MODELS, 'TinyNASMob'),
    (MODELS, 'RepGFPN'),
    (MODELS, 'ZeroHead'),
    (MODELS, 'DAMOYOLO'),
    (TASK_UTILS, 'AlignOTAAssigner'),
])
def test_registered_in_mmdet(registry, name):
    assert registry.get(name) is not None, f'{name} not in {registry.name}'
    # registered in mmdet's own scope, so stock mmdet configs can use them
    assert name in registry.module_dict


def test_custom_imports_from_stock_mmdet_config(tmp_path, repo_root):
    """A fresh process that never imports damoyolo_mm itself builds our neck
    from a stock-style mmdet config through `custom_imports` alone."""
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(textwrap.dedent("""
        custom_imports = dict(imports=['damoyolo_mm'],
                              allow_failed_imports=False)
        default_scope = 'mmdet'
        neck = dict(type='RepGFPN', in_channels=[32, 64, 128],
                    out_channels=[32, 64, 128])
    """))
    code = textwrap.dedent(f"""
        import sys
        from mmdet.registry import MODELS
        assert MODELS.get('RepGFPN') is None
        from mmengine.config import Config
        cfg = Config.fromfile({str(cfg)!r})
        assert 'damoyolo_mm' in sys.modules
        neck = MODELS.build(cfg.neck)
        print(type(neck).__name__)
    """)
    out = subprocess.run([sys.executable, '-c', code], cwd=repo_root,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith('RepGFPN')


def test_register_all_modules_sets_scope():
    from mmengine import DefaultScope

    from damoyolo_mm.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    assert DefaultScope.get_current_instance().scope_name == 'mmdet'


def test_compat_checkpoint_loading(tmp_path):
    """torch>=2.6 defaults to weights_only=True; mmengine checkpoints carry
    numpy objects and a message hub. The compat allow-list makes them load
    with weights_only=True (no full unpickling)."""
    import numpy as np
    import torch
    from mmengine.logging import HistoryBuffer
    from mmengine.runner import load_checkpoint
    ckpt = dict(meta=dict(epoch=3, arr=np.arange(3),
                          hub=HistoryBuffer([1.0, 2.0], [1, 1])),
                state_dict=dict(weight=torch.ones(2)))
    path = tmp_path / 'c.pth'
    torch.save(ckpt, path)
    assert torch.load(path, weights_only=True)['meta']['epoch'] == 3
    model = torch.nn.Module()
    model.weight = torch.nn.Parameter(torch.zeros(2))
    loaded = load_checkpoint(model, str(path), map_location='cpu')
    assert loaded['meta']['epoch'] == 3
    assert torch.equal(model.weight.data, torch.ones(2))
    assert osp.isfile(path)
