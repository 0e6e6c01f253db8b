"""Resolved configs as plain data, for the snapshot in
tests/data/config_snapshots/resolved_configs.json.

A config's resolved form is ``Config.fromfile(path).to_dict()`` with the
clone's absolute location taken out (``<repo>/configs/...``, paths
normalised), tuples kept apart from lists and non-string dict keys kept,
so that a refactoring of the config files can be checked value for value.

Write the snapshot (only for an intended change of what a config resolves
to; say which in the commit) with::

    python tests/test_configs/config_snapshot.py
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys
from typing import Any, Dict, Iterator, List

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SNAPSHOT = osp.join(REPO_ROOT, 'tests', 'data', 'config_snapshots',
                    'resolved_configs.json')


def config_files() -> List[str]:
    """Every config a user runs (paths relative to the clone): configs/
    and projects/*/configs/, without the ``_base_`` folders."""
    found = glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'),
                      recursive=True)
    found += glob.glob(osp.join(REPO_ROOT, 'projects', '*', 'configs',
                                '*.py'))
    rel = [osp.relpath(p, REPO_ROOT).replace(os.sep, '/') for p in found]
    return sorted(p for p in rel if '_base_' not in p.split('/'))


def _plain(value: Any) -> Any:
    """JSON-able form that keeps tuples, int keys and repo-relative paths."""
    if isinstance(value, dict):
        items = [(k, _plain(v)) for k, v in value.items()]
        if all(isinstance(k, str) for k, _ in items):
            return dict(items)
        return {'__items__': [[k, v] for k, v in items]}
    if isinstance(value, tuple):
        return {'__tuple__': [_plain(v) for v in value]}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str) and value.startswith(REPO_ROOT + os.sep):
        rel = osp.normpath(osp.relpath(value, REPO_ROOT))
        return '<repo>/' + rel.replace(os.sep, '/')
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f'{type(value).__name__} value {value!r} in a config')


def resolve(rel_path: str) -> Dict[str, Any]:
    """The resolved config of ``rel_path`` (relative to the clone)."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO_ROOT, rel_path),
                          import_custom_modules=False)
    return _plain(cfg.to_dict())


def load_snapshot(path: str = SNAPSHOT) -> Dict[str, Any]:
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def differences(old: Any, new: Any, where: str = '') -> Iterator[str]:
    """One readable line per difference between two resolved values."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old:
            sub = f'{where}.{key}' if where else str(key)
            if key not in new:
                yield f'{sub}: removed (was {old[key]!r})'
            else:
                yield from differences(old[key], new[key], sub)
        for key in new:
            if key not in old:
                sub = f'{where}.{key}' if where else str(key)
                yield f'{sub}: added ({new[key]!r})'
    elif isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            yield (f'{where}: {len(old)} items -> {len(new)}: '
                   f'{old!r} -> {new!r}')
            return
        for i, (a, b) in enumerate(zip(old, new)):
            yield from differences(a, b, f'{where}[{i}]')
    elif old != new or type(old) is not type(new):
        yield f'{where}: {old!r} -> {new!r}'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description='Write the resolved form of every config (configs/, '
        'projects/*/configs/) to the snapshot the tests compare with.')
    parser.add_argument('--out', default=SNAPSHOT,
                        help='JSON file to write (default: %(default)s)')
    args = parser.parse_args(argv)
    snapshot = {p: resolve(p) for p in config_files()}
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    tmp = args.out + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(snapshot, f, indent=1, sort_keys=True)
        f.write('\n')
    os.replace(tmp, args.out)
    print(f'{len(snapshot)} configs -> {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
