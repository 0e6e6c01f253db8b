"""tools/benchmark_train.py runs and reports every part (smoke test)."""
import os
import os.path as osp
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OFFICIAL_ROOT = os.environ.get(
    'DAMOYOLO_OFFICIAL_ROOT',
    osp.join(osp.dirname(REPO), 'ref', 'damoyolo_official'))


def test_benchmark_against_the_reference(one_thread, capsys, load_tool):
    if not osp.isdir(osp.join(OFFICIAL_ROOT, 'damo')):
        pytest.skip(f'reference code not found at {OFFICIAL_ROOT}')
    tool = load_tool('benchmark_train')
    modules_before = set(sys.modules)
    res = tool.main([
        osp.join(REPO, 'configs', 'damoyolo_t_coco.py'), '--batch-size', '2',
        '--img-size', '64', '--iters', '1', '--warmup', '0', '--threads',
        '1', '--official-root', OFFICIAL_ROOT, '--num-gts', '3'
    ])
    out = capsys.readouterr().out
    assert 'cpu_count' in out and 'torch_threads: 1' in out
    for part in tool.PARTS:
        assert part in res['ours'] and part in res['official']
    for impl in ('ours', 'official'):
        assert res[impl]['forward'] > 0 and res[impl]['backward'] > 0
        assert res[impl]['assign'] > 0
    assert res['ratio_step'] > 0 and res['ratio_assign'] > 0
    # both implementations start from the same kind of head init
    ours, ref = res['last_losses']['ours'], res['last_losses']['official']
    assert 0.1 < ours['loss'] / ref['total_loss'] < 10
    # the stand-ins for torchvision etc. and the reference modules are gone
    assert 'torchvision' not in sys.modules or \
        'torchvision' in modules_before
    assert not [n for n in sys.modules if n == 'damo' or
                n.startswith('damo.')]
    assert OFFICIAL_ROOT not in sys.path


def test_benchmark_ours_alone(one_thread, capsys, load_tool):
    """Without the reference: every part is timed, and the memory format
    follows the config's MemoryFormatHook unless given."""
    tool = load_tool('benchmark_train')
    args = ['--batch-size', '2', '--img-size', '64', '--iters', '1',
            '--warmup', '0', '--threads', '1', '--num-gts', '2']
    res = tool.main(
        [osp.join(REPO, 'configs', 'quickstart', 'damoyolo_quickstart.py')] +
        args)
    assert 'memory format channels_last' in capsys.readouterr().out
    for part in ('forward', 'assign', 'loss', 'backward', 'optim', 'ema'):
        assert res['ours'][part] > 0, part
    assert 'official' not in res or not res['official']
    losses = res['last_losses']['ours']
    assert 0 < losses['loss'] < 100
    tool.main([osp.join(REPO, 'configs', 'damoyolo_ns_coco.py')] + args +
              ['--memory-format', 'contiguous'])
    assert 'memory format contiguous' in capsys.readouterr().out
