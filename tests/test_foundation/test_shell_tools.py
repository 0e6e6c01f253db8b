"""The shell entry points answer --help without starting any work."""
import os.path as osp
import subprocess

import pytest


@pytest.mark.parametrize('script', ['quickstart.sh', 'distill_demo.sh',
                                    'finetune_demo.sh'])
def test_help(repo_root, tmp_path, script):
    out = subprocess.run(['bash', osp.join(repo_root, 'tools', script),
                          '--help'], cwd=str(tmp_path), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert 'Usage: bash tools/' + script in out.stdout
    # nothing was set up, generated or trained
    assert not osp.exists(osp.join(repo_root, 'work_dirs', '--help'))
    assert list(tmp_path.iterdir()) == []


def test_distill_demo_needs_the_environment(repo_root, tmp_path):
    env = {'PATH': '/usr/bin:/bin', 'DAMOYOLO_VENV': str(tmp_path / 'none')}
    out = subprocess.run(['bash', osp.join(repo_root, 'tools',
                                           'distill_demo.sh')],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 1
    assert 'tools/setup_env.sh' in out.stderr


def test_distill_demo_refuses_a_missing_baseline(repo_root, tmp_path):
    out = subprocess.run(['bash', osp.join(repo_root, 'tools',
                                           'distill_demo.sh'), '--baseline',
                          str(tmp_path / 'missing.pth')],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert 'missing.pth' in out.stderr and 'checkpoint' in out.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize('option,value,expected', [
    ('--seed', 'one', 'non-negative integer'),
    ('--pair', 'big', "'nano' or 'hetero'")])
def test_distill_demo_refuses_a_bad_option(repo_root, tmp_path, option,
                                           value, expected):
    out = subprocess.run(['bash', osp.join(repo_root, 'tools',
                                           'distill_demo.sh'), option,
                          value], cwd=str(tmp_path), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2
    assert option in out.stderr and f"'{value}'" in out.stderr
    assert expected in out.stderr, out.stderr
    assert list(tmp_path.iterdir()) == []


def test_finetune_demo_refuses_a_missing_base_checkpoint(repo_root, tmp_path):
    out = subprocess.run(['bash', osp.join(repo_root, 'tools',
                                           'finetune_demo.sh'), '--base-ckpt',
                          str(tmp_path / 'missing.pth')],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert 'missing.pth' in out.stderr and '--base-ckpt' in out.stderr
    assert list(tmp_path.iterdir()) == []
