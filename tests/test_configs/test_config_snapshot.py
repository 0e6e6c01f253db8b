"""Every config resolves to what the snapshot holds, value for value.

The snapshot (tests/data/config_snapshots/resolved_configs.json) was taken
before the configs were restructured into sibling inheritance; a
restructuring must not change what any config resolves to.
"""
import os.path as osp

import pytest

from config_snapshot import (REPO_ROOT, _plain, differences, load_snapshot,
                             resolve)

SNAPSHOT = load_snapshot()


def test_snapshot_is_not_empty():
    names = set(SNAPSHOT)
    assert len(names) >= 33
    assert {'configs/damoyolo_%s_coco.py' % v
            for v in ('ns', 'nm', 'nl', 't', 's', 'm', 'l')} <= names


@pytest.mark.parametrize('rel_path', sorted(SNAPSHOT))
def test_resolved_config_matches_snapshot(rel_path):
    assert osp.isfile(osp.join(REPO_ROOT, rel_path)), \
        f'{rel_path} is in the snapshot but no longer exists'
    diff = list(differences(SNAPSHOT[rel_path], resolve(rel_path)))
    assert not diff, f'{rel_path} resolves differently:\n' + '\n'.join(diff)


def test_differences_are_reported_by_key():
    old = _plain(dict(a=dict(b=[1, (2, 3)], c=2.0), d=0))
    new = _plain(dict(a=dict(b=[1, (2, 4)], c=2), e=0))
    assert list(differences(old, new)) == [
        "a.b[1].__tuple__[1]: 3 -> 4", 'a.c: 2.0 -> 2', 'd: removed (was 0)',
        'e: added (0)']
    # a tuple is not a list
    assert list(differences(_plain((1, 2)), _plain([1, 2])))
