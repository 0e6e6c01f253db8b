"""tools/benchmark_data.py measures both data pipelines (smoke test)."""
import os
import os.path as osp
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OFFICIAL_ROOT = os.environ.get(
    'DAMOYOLO_OFFICIAL_ROOT',
    osp.join(osp.dirname(REPO), 'ref', 'damoyolo_official'))


def test_benchmark_data_against_the_reference(one_thread, capsys, load_tool):
    if not osp.isdir(osp.join(OFFICIAL_ROOT, 'damo')):
        pytest.skip(f'reference code not found at {OFFICIAL_ROOT}')
    tool = load_tool('benchmark_data')
    modules_before = set(sys.modules)
    res = tool.main([
        osp.join(REPO, 'configs', 'damoyolo_s_coco.py'), '--official-root',
        OFFICIAL_ROOT, '--num-images', '4', '--batch-size', '2',
        '--num-batches', '1', '--workers', '0', '--profile-images', '2'])
    out = capsys.readouterr().out
    assert 'machine: ' in out and 'ours / official: images/s' in out
    for impl, parts in (('ours', ('SADA', 'DAMOYOLOMosaic',
                                  'load: LoadImageFromFile')),
                        ('official', ('SA_Aug', 'load: pull_item',
                                      'random_affine'))):
        rate, (timed, wall_ms, cpu_ms) = res[impl]
        assert rate > 0 and wall_ms > 0 and cpu_ms > 0
        assert all(timed[p] > 0 for p in parts), timed
    # the stand-ins for torchvision etc. and the reference modules are gone
    assert 'torchvision' not in sys.modules or \
        'torchvision' in modules_before
    assert not [n for n in sys.modules if n == 'damo' or
                n.startswith('damo.')]
    assert OFFICIAL_ROOT not in sys.path
