"""Every config resolves to what the snapshot holds, value for value.

The snapshot (tests/data/config_snapshots/resolved_configs.json) was taken
before the configs were restructured into sibling inheritance; a
restructuring must not change what any config resolves to.

What the restructuring may change, each checked here rather than ignored:

* top-level knobs (``KNOBS``): they only feed the transforms; before, some
  variants left a stale base value there (Ns showed shear 2.0 while its
  affine used 0.2). Each knob must now equal what its transform uses;
  ``input_size`` is gone (one name for the test size: ``img_scale``).
* the keys of a base listed beside a config for its values (``HELPERS``:
  the demo data, the distillation settings), equal to that file's values;
  the quickstart's top-level ``classes`` gave way to
  ``metainfo['classes']``.
* an argument now written with its default value (``DEFAULTS``, checked
  against the signatures in ``test_defaults_are_the_signature_defaults``);
  ``_scope_`` equal to the config's ``default_scope`` (transforms taken
  from an ``mmdet::`` base carry it).
"""
import copy
import os.path as osp

import pytest

from config_snapshot import (REPO_ROOT, _plain, differences, load_snapshot,
                             resolve)

SNAPSHOT = load_snapshot()
KNOBS = ('img_scale', 'mosaic_size', 'mosaic_scale', 'max_shear_degree',
         'input_size')
HELPERS = ('configs/_base_/datasets/demo_detection.py',
           'configs/distill/_base_/distill.py')
# type -> arguments whose default value a config may now state explicitly
DEFAULTS = {
    'LoadImageFromFile': dict(backend_args=None),
    'DAMOYOLOCocoDataset': dict(backend_args=None),
    'SADA': dict(box_prob=0.3, num_subpolicies=5,
                 scale_splits=_plain((2048, 10240, 51200))),
    'CheckFiniteLossHook': dict(interval=1),
}


def _with_defaults(value, scope):
    """``value`` with the ``DEFAULTS`` of every typed dict filled in (and
    ``filter_cfg.min_size`` 0, mmdet's default, where a filter is set),
    without a ``_scope_`` that names the default ``scope``."""
    if isinstance(value, list):
        return [_with_defaults(v, scope) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _with_defaults(v, scope) for k, v in value.items()
           if not (k == '_scope_' and v == scope)}
    for key, default in DEFAULTS.get(out.get('type'), {}).items():
        out.setdefault(key, default)
    if out.get('type') == 'DAMOYOLOCocoDataset' and 'filter_cfg' in out:
        out['filter_cfg'] = dict(out['filter_cfg'])
        out['filter_cfg'].setdefault('min_size', 0)
    return out


def _comparable(resolved, helpers):
    """Without the knobs (checked apart) and the keys that hold the values
    of a helper base."""
    resolved = copy.deepcopy(resolved)
    for key in KNOBS + ('classes', ):
        resolved.pop(key, None)
    for key, value in helpers.items():
        if resolved.get(key) == value:
            resolved.pop(key)
    return _with_defaults(resolved, resolved.get('default_scope'))


def _transforms(resolved, type_name):
    pipelines = [resolved.get('train_pipeline', []),
                 resolved.get('test_pipeline', [])]
    return [t for p in pipelines for t in p if t.get('type') == type_name]


def _check_knobs(resolved):
    """Each top-level knob equals what its transforms use."""
    assert 'input_size' not in resolved, 'the test size is `img_scale`'
    uses = {
        'img_scale': ('Resize', 'scale'),
        'mosaic_size': ('DAMOYOLOMosaic', 'img_scale'),
        'mosaic_scale': ('DAMOYOLORandomAffine', 'scaling_ratio_range'),
        'max_shear_degree': ('DAMOYOLORandomAffine', 'max_shear_degree'),
    }
    for knob, (type_name, arg) in uses.items():
        used = [t[arg] for t in _transforms(resolved, type_name)]
        if knob in resolved and used:
            assert all(u == resolved[knob] for u in used), (knob, used)


@pytest.fixture(scope='module')
def helpers():
    keys = {}
    for path in HELPERS:
        keys.update(resolve(path))
    return keys


def test_snapshot_is_not_empty():
    names = set(SNAPSHOT)
    assert len(names) >= 33
    assert {'configs/damoyolo_%s_coco.py' % v
            for v in ('ns', 'nm', 'nl', 't', 's', 'm', 'l')} <= names


@pytest.mark.parametrize('rel_path', sorted(SNAPSHOT))
def test_resolved_config_matches_snapshot(rel_path, helpers):
    assert osp.isfile(osp.join(REPO_ROOT, rel_path)), \
        f'{rel_path} is in the snapshot but no longer exists'
    old, new = SNAPSHOT[rel_path], resolve(rel_path)
    diff = list(differences(_comparable(old, helpers),
                            _comparable(new, helpers)))
    assert not diff, f'{rel_path} resolves differently:\n' + '\n'.join(diff)
    _check_knobs(new)
    if 'classes' in old and 'classes' not in new:
        assert new['metainfo']['classes'] == old['classes']


@pytest.mark.parametrize('rel_path', ['configs/damoyolo_ns_coco.py',
                                      'configs/damoyolo_t_coco.py'])
def test_a_changed_value_is_reported(rel_path, helpers):
    """The comparison sees a change of a knob's transform and of a model
    value (what a wrong re-derivation in a child would do)."""
    new = resolve(rel_path)
    affine = [t for t in new['train_pipeline']
              if t['type'] == 'DAMOYOLORandomAffine'][0]
    affine['max_shear_degree'] = 1.0
    new['model']['neck']['depth'] = 3.0
    diff = list(differences(_comparable(SNAPSHOT[rel_path], helpers),
                            _comparable(new, helpers)))
    assert 'model.neck.depth: 1.0 -> 3.0' in diff or \
        'model.neck.depth: 0.5 -> 3.0' in diff
    assert any('max_shear_degree' in d for d in diff), diff
    with pytest.raises(AssertionError, match='max_shear_degree'):
        _check_knobs(new)


def test_defaults_are_the_signature_defaults():
    import inspect

    from mmcv.transforms import LoadImageFromFile

    from damoyolo_mm.datasets import DAMOYOLOCocoDataset
    from damoyolo_mm.datasets.transforms import SADA
    from damoyolo_mm.engine.hooks import CheckFiniteLossHook
    classes = dict(LoadImageFromFile=LoadImageFromFile, SADA=SADA,
                   DAMOYOLOCocoDataset=DAMOYOLOCocoDataset,
                   CheckFiniteLossHook=CheckFiniteLossHook)
    for name, defaults in DEFAULTS.items():
        for key, value in defaults.items():
            # the first class up the MRO whose __init__ names the argument
            params = [
                inspect.signature(c.__init__).parameters
                for c in classes[name].__mro__
                if key in inspect.signature(c.__init__).parameters
            ]
            assert params, (name, key)
            default = _plain(params[0][key].default)
            assert default == value, (name, key, default)
    # the dataset's filter reads min_size with default 0
    source = inspect.getsource(DAMOYOLOCocoDataset.filter_data)
    assert "self.filter_cfg.get('min_size', 0)" in source


def test_differences_are_reported_by_key():
    old = _plain(dict(a=dict(b=[1, (2, 3)], c=2.0), d=0))
    new = _plain(dict(a=dict(b=[1, (2, 4)], c=2), e=0))
    assert list(differences(old, new)) == [
        "a.b[1].__tuple__[1]: 3 -> 4", 'a.c: 2.0 -> 2', 'd: removed (was 0)',
        'e: added (0)']
    # a tuple is not a list
    assert list(differences(_plain((1, 2)), _plain([1, 2])))
