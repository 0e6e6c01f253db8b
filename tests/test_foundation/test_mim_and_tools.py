"""mim integration and the mmdet-style entry points."""
import os
import os.path as osp
import subprocess
import sys

import pytest

TOOLS = ('train.py', 'test.py', 'convert_official.py', 'deploy.py',
         'nas_search.py', 'misc/gen_demo_data.py')


def _installed_root():
    from mim.utils import get_installed_path, is_installed
    if not is_installed('damoyolo_mm'):
        pytest.fail('damoyolo_mm is not installed in this environment: run '
                    '`bash tools/setup_env.sh`')
    return get_installed_path('damoyolo_mm')


def test_mim_finds_configs_and_tools():
    """Resolve a config exactly as `mim train damoyolo_mm CONFIG` does."""
    from mim.utils import recursively_find
    root = _installed_root()
    assert osp.isdir(osp.join(root, '.mim', 'configs')), root
    found = recursively_find(root, 'damoyolo_s_coco.py', followlinks=True)
    assert len(found) == 1, found  # mim refuses ambiguous names
    assert osp.join('.mim', 'configs') in found[0]
    assert osp.isfile(osp.join(root, '.mim', 'tools', 'train.py'))
    assert osp.isfile(osp.join(root, '.mim', 'tools', 'test.py'))


def test_config_basenames_unique(repo_root):
    """mim looks configs up by file name: names must be unique."""
    seen = {}
    for top in ('configs', 'projects'):
        for dirpath, _, files in os.walk(osp.join(repo_root, top)):
            for f in files:
                if f.endswith('.py') and '_base_' not in dirpath:
                    assert f not in seen, (f, seen.get(f), dirpath)
                    seen[f] = dirpath


@pytest.mark.parametrize('tool', TOOLS)
def test_tools_have_help(repo_root, tool):
    path = osp.join(repo_root, 'tools', tool)
    if not osp.isfile(path):
        pytest.fail(f'missing tool {path}')
    out = subprocess.run([sys.executable, path, '--help'], cwd=repo_root,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'usage:' in out.stdout


def test_train_tool_bad_config_path(repo_root, tmp_path):
    out = subprocess.run(
        [sys.executable, osp.join(repo_root, 'tools', 'train.py'),
         'configs/does_not_exist.py', '--work-dir', str(tmp_path)],
        cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "config file 'configs/does_not_exist.py' not found" in out.stderr
