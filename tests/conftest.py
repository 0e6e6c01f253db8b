"""Shared pytest fixtures.

Golden reference files live outside the clone, in ``../shared/golden`` beside
the repository (override with ``DAMOYOLO_GOLDEN=/path``).
"""
import importlib.util
import os
import os.path as osp

import pytest
import torch
from numerics import threads

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
GOLDEN_DIR = os.environ.get(
    'DAMOYOLO_GOLDEN', osp.join(osp.dirname(REPO_ROOT), 'shared', 'golden'))

# two cores on the reference machine; keep every test deterministic
# (DAMOYOLO_TEST_THREADS overrides every numeric test's choice, see
# tests/numerics.py)
torch.set_num_threads(threads(min(2, os.cpu_count() or 1)))


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'heavy: slow check; an equivalent light test runs by '
        'default, run with `-m heavy`')


@pytest.fixture(scope='session')
def repo_root():
    return REPO_ROOT


def _load_tool(name):
    """Import ``tools/<name>.py`` of the clone (``name`` may hold a
    sub-folder, e.g. ``'nas/build_latency_lut'``) as a fresh module."""
    spec = importlib.util.spec_from_file_location(
        '_tool_' + name.replace('/', '_'),
        osp.join(REPO_ROOT, 'tools', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def load_tool():
    """``load_tool('deploy')``: the module of ``tools/deploy.py``."""
    return _load_tool


@pytest.fixture(scope='module')
def single_thread():
    """One intra-op thread for a test module (``pytestmark =
    pytest.mark.usefixtures('single_thread')``): on the shared 2-core
    machine two threads are up to 20x slower under load; restored after."""
    n = torch.get_num_threads()
    torch.set_num_threads(threads(1))
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope='session')
def golden_dir():
    if not osp.isdir(GOLDEN_DIR):
        pytest.fail(f'golden folder {GOLDEN_DIR} not found: the shared/ folder '
                    'must sit beside the clone (or set DAMOYOLO_GOLDEN)')
    return GOLDEN_DIR


@pytest.fixture(scope='session', autouse=True)
def _register_all_modules():
    from damoyolo_mm.utils import register_all_modules
    register_all_modules(init_default_scope=True)


@pytest.fixture(scope='session')
def demo_data_root(tmp_path_factory):
    """A small copy of the embedded demo dataset (16 train / 8 val images)."""
    from damoyolo_mm.datasets import generate_demo_dataset
    root = tmp_path_factory.mktemp('demo_data')
    generate_demo_dataset(str(root), seed=0, num_train=16, num_val=8)
    return str(root) + '/'
