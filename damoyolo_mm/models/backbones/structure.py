"""TinyNAS structure specs: the one place that parses, looks up and
validates them (backbones and the MAE-NAS search both load specs here).

A structure spec is a list of stage dicts, stem first, in the format of the
official DAMO-YOLO structure files (a Python literal)::

    [{'class': 'ConvKXBNRELU', 'in': 3, 'out': 24, 'k': 3, 's': 1},
     {'class': 'SuperResConvK1KX', 'in': 24, 'out': 64, 'btn': 24,
      'k': 3, 's': 2, 'L': 2},
     ...]

Stage classes: ``ConvKXBNRELU`` (stem: in, out, k, s), ``SuperResConvK1KX``
and ``SuperResConvKXKX`` (in, out, btn, k, s, L). The keys ``nbitsA``,
``nbitsW`` and ``inner_class`` (written by TinyNAS) are allowed and dropped.

The official specs ship as package data in ``structures/``: pass their name
(``'tinynas_L20_k1kx'``), a path to a file, or the list itself.

The stem ``in`` is 3 in the files (the image; a Focus stem folds it to 12
channels). The search counts the stem on the folded input: ``stem_in=12``
rewrites a stem ``in`` of 3 (see :mod:`damoyolo_mm.nas.structure`).

Every problem raises :class:`StructureError` (a ``ValueError``) naming the
source, the stage index and the key.

In config files the two keys that are Python keywords are written
``class_`` and ``in_`` (:data:`CONFIG_KEY_ALIASES`): mmengine writes a dict
whose keys are identifiers as ``dict(class=...)`` in ``Config.pretty_text``
/ ``Config.dump`` (what ``print_config.py`` and the Runner do), a syntax
error. Both spellings are accepted everywhere; structure files keep the
official ``'class'`` / ``'in'``.
"""
import ast
import copy
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

STRUCTURE_DIR = osp.join(osp.dirname(osp.abspath(__file__)), 'structures')

STEM_CLASS = 'ConvKXBNRELU'
STAGE_CLASSES = {'SuperResConvK1KX': 'k1kx', 'SuperResConvKXKX': 'kxkx'}
#: ``inner_class`` TinyNAS writes for each stage class
INNER_CLASSES = {
    'SuperResConvK1KX': 'ResConvK1KX',
    'SuperResConvKXKX': 'ResConvKXKX'
}
REQUIRED_KEYS = {
    STEM_CLASS: ('in', 'out', 'k', 's'),
    'SuperResConvK1KX': ('in', 'out', 'btn', 'k', 's', 'L'),
    'SuperResConvKXKX': ('in', 'out', 'btn', 'k', 's', 'L'),
}
IGNORED_KEYS = ('nbitsA', 'nbitsW', 'inner_class')
#: stem input channels in the structure files (RGB)
IMAGE_STEM_IN = 3
#: config spelling -> structure-file spelling of the keyword keys
CONFIG_KEY_ALIASES = {'class_': 'class', 'in_': 'in'}

StructureType = Union[str, Sequence[Dict]]


class StructureError(ValueError):
    """A structure spec is malformed; the message names source, stage and
    key."""


class StructureNotFoundError(StructureError, FileNotFoundError):
    """A structure name or path that is neither a file nor shipped."""


def list_structures(structure_dirs: Sequence[str] = (STRUCTURE_DIR, )
                    ) -> List[str]:
    """Names of the structure specs shipped in ``structure_dirs``."""
    return sorted(f[:-4] for d in structure_dirs for f in os.listdir(d)
                  if f.endswith('.txt'))


def resolve_structure_path(
        spec: str, structure_dirs: Sequence[str] = (STRUCTURE_DIR, )) -> str:
    """Path of a structure file given as a path or a shipped name."""
    if osp.isfile(spec):
        return spec
    name = osp.basename(spec)
    name = name[:-4] if name.endswith('.txt') else name
    if osp.sep not in spec:
        for d in structure_dirs:
            candidate = osp.join(d, name + '.txt')
            if osp.isfile(candidate):
                return candidate
    raise StructureNotFoundError(
        f'TinyNAS structure {spec!r} is neither an existing file nor one of '
        f'the shipped structures {list_structures(structure_dirs)}')


def read_structure_file(path: str) -> List[Dict]:
    """Parse a structure file (one Python list literal; comments allowed)."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError) as e:
        raise StructureError(f'TinyNAS structure file {path}: not a Python '
                             f'list literal of stage dicts ({e})') from e


def load_structure(spec: StructureType,
                   allowed_classes: Sequence[str] = tuple(STAGE_CLASSES),
                   source: Optional[str] = None,
                   strict: bool = False,
                   stem_in: Optional[int] = None,
                   drop_keys: Sequence[str] = IGNORED_KEYS,
                   structure_dirs: Sequence[str] = (STRUCTURE_DIR, )
                   ) -> List[Dict]:
    """Load and validate a structure spec.

    Args:
        spec: Shipped name, file path, or list of stage dicts.
        allowed_classes: Stage classes (besides the stem) the caller can
            build.
        source: Name used in error messages.
        strict: Also reject keys other than the required and the TinyNAS
            ones, even kernels and an ``inner_class`` that does not match
            the stage class (the search checks what it emits this way).
        stem_in: Rewrite a stem ``in`` of 3 (the image) to this value
            (12: the Focus output the search counts on).
        drop_keys: Keys removed from every stage before validation.
        structure_dirs: Folders searched for a shipped name.

    Returns:
        list[dict]: Validated deep copy.

    Raises:
        StructureError: Naming the stage index and key when a stage has an
            unknown class, misses a key, has a non-positive integer value,
            or its ``in`` differs from the previous stage's ``out``.
    """
    if isinstance(spec, str):
        path = resolve_structure_path(spec, structure_dirs)
        stages = read_structure_file(path)
        source = source or path
    elif isinstance(spec, (list, tuple)):
        # configs spell the keyword keys class_ / in_
        stages = from_config_keys(copy.deepcopy(list(spec)))
        source = source or 'inline structure'
    else:
        raise StructureError(
            f'{source or "structure"}: expected a list of stage dicts, a '
            f'file path or a shipped structure name, got '
            f'{type(spec).__name__}')
    if isinstance(stages, (list, tuple)):
        stages = [{k: v for k, v in st.items() if k not in drop_keys}
                  if isinstance(st, dict) else st for st in stages]
        if stem_in is not None and stages and isinstance(stages[0], dict) \
                and stages[0].get('in') == IMAGE_STEM_IN:
            stages[0]['in'] = stem_in
    validate_structure(stages, allowed_classes, source, strict)
    return stages


def from_config_keys(stages):
    """``class_`` / ``in_`` -> ``class`` / ``in`` in every stage dict.

    Anything that is not a list of dicts is returned unchanged (validation
    reports it). A stage with both spellings of a key raises StructureError.
    """
    if not isinstance(stages, (list, tuple)):
        return stages
    out = []
    for idx, st in enumerate(stages):
        if hasattr(st, 'items'):
            both = [a for a, k in CONFIG_KEY_ALIASES.items()
                    if a in st and k in st]
            if both:
                raise StructureError(
                    f'stage {idx} has both {both[0]!r} and '
                    f'{CONFIG_KEY_ALIASES[both[0]]!r}; give one')
            st = {CONFIG_KEY_ALIASES.get(k, k): v for k, v in st.items()}
        out.append(st)
    return out


def to_config_keys(stages) -> List[Dict]:
    """``class`` / ``in`` -> ``class_`` / ``in_`` (the config spelling)."""
    inverse = {v: k for k, v in CONFIG_KEY_ALIASES.items()}
    return [{inverse.get(k, k): v for k, v in st.items()} for st in stages]


def validate_structure(stages,
                       allowed_classes: Sequence[str] = tuple(STAGE_CLASSES),
                       source: str = 'structure',
                       strict: bool = False) -> None:
    """Check a list of stage dicts; raise :class:`StructureError` on the
    first problem, naming the stage index and key."""
    if not isinstance(stages, (list, tuple)) or len(stages) < 2:
        raise StructureError(
            f'{source}: expected a list of at least 2 stage dicts (stem + '
            f'stages), got {stages!r:.200}')
    for idx, st in enumerate(stages):
        if not isinstance(st, dict):
            raise StructureError(f'{source}: stage {idx} must be a dict, got '
                                 f'{type(st).__name__}')
        if 'class' not in st:
            raise StructureError(f"{source}: stage {idx} misses key 'class'")
        cls = st['class']
        expected = (STEM_CLASS, ) if idx == 0 else tuple(allowed_classes)
        if cls not in expected and idx == 0:
            raise StructureError(
                f"{source}: stage 0 key 'class' = {cls!r}: the first stage "
                f'must be the stem {STEM_CLASS!r}')
        if cls not in expected:
            raise StructureError(
                f'{source}: block {idx}: unknown block class: stage {idx} key '
                f"'class' = {cls!r} is not supported here (expected one of "
                f'{list(expected)})')
        required = REQUIRED_KEYS[cls]
        for key in required:
            if key not in st:
                raise StructureError(
                    f'{source}: stage {idx} ({cls}) misses key {key!r} '
                    f'(block {idx} missing key {key!r}; required: '
                    f'{list(required)})')
            value = st[key]
            if isinstance(value, bool) or not isinstance(value, int) \
                    or value < 1:
                raise StructureError(
                    f'{source}: stage {idx} key {key!r} must be a positive '
                    f'int, got {value!r}')
        if idx > 0 and st['s'] not in (1, 2):
            raise StructureError(f"{source}: stage {idx} key 's' must be 1 "
                                 f"or 2, got {st['s']}")
        if strict:
            _check_strict(st, idx, cls, source)
        if idx > 0 and st['in'] != stages[idx - 1]['out']:
            raise StructureError(
                f"{source}: stage {idx} key 'in' = {st['in']} (in={st['in']} "
                f'does not match the previous output) differs from stage '
                f"{idx - 1} key 'out' = {stages[idx - 1]['out']}")


def _check_strict(st: Dict, idx: int, cls: str, source: str) -> None:
    allowed = REQUIRED_KEYS[cls] + ('class', ) + IGNORED_KEYS
    unknown = [k for k in st if k not in allowed]
    if unknown:
        raise StructureError(
            f'{source}: stage {idx} ({cls}) has unknown key(s) {unknown}; '
            f'allowed {list(allowed)}')
    if idx == 0 and st['s'] not in (1, 2):
        raise StructureError(f"{source}: stage 0 key 's' must be 1 or 2, "
                             f"got {st['s']}")
    if st['k'] % 2 != 1:
        raise StructureError(f"{source}: stage {idx} key 'k' must be odd, "
                             f"got {st['k']}")
    inner = st.get('inner_class')
    if inner is not None and inner != INNER_CLASSES.get(cls):
        raise StructureError(
            f"{source}: stage {idx} key 'inner_class' = {inner!r} does not "
            f'match {cls}, expected {INNER_CLASSES.get(cls)!r}')
