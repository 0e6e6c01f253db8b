"""TinyNAS structure specs: loading and validation.

A structure spec is a list of stage dicts, stem first, in the format of the
official DAMO-YOLO structure files (a Python literal)::

    [{'class': 'ConvKXBNRELU', 'in': 3, 'out': 24, 'k': 3, 's': 1},
     {'class': 'SuperResConvK1KX', 'in': 24, 'out': 64, 'btn': 24,
      'k': 3, 's': 2, 'L': 2},
     ...]

Stage classes: ``ConvKXBNRELU`` (stem: in, out, k, s), ``SuperResConvK1KX``
and ``SuperResConvKXKX`` (in, out, btn, k, s, L). Extra keys (``nbitsA``,
``nbitsW``, ``inner_class`` written by the NAS search) are ignored.

The official specs ship as package data in ``structures/``: pass their name
(``'tinynas_L20_k1kx'``), a path to a file, or the list itself.

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
from typing import Dict, List, Sequence, Union

STRUCTURE_DIR = osp.join(osp.dirname(osp.abspath(__file__)), 'structures')

STEM_CLASS = 'ConvKXBNRELU'
STAGE_CLASSES = {'SuperResConvK1KX': 'k1kx', 'SuperResConvKXKX': 'kxkx'}
REQUIRED_KEYS = {
    STEM_CLASS: ('in', 'out', 'k', 's'),
    'SuperResConvK1KX': ('in', 'out', 'btn', 'k', 's', 'L'),
    'SuperResConvKXKX': ('in', 'out', 'btn', 'k', 's', 'L'),
}
IGNORED_KEYS = ('nbitsA', 'nbitsW', 'inner_class')
#: config spelling -> structure-file spelling of the keyword keys
CONFIG_KEY_ALIASES = {'class_': 'class', 'in_': 'in'}

StructureType = Union[str, Sequence[Dict]]


def list_structures() -> List[str]:
    """Names of the structure specs shipped with the package."""
    return sorted(
        f[:-4] for f in os.listdir(STRUCTURE_DIR) if f.endswith('.txt'))


def _resolve_path(spec: str) -> str:
    if osp.isfile(spec):
        return spec
    name = osp.basename(spec)
    name = name[:-4] if name.endswith('.txt') else name
    candidate = osp.join(STRUCTURE_DIR, name + '.txt')
    if osp.sep not in spec and osp.isfile(candidate):
        return candidate
    raise FileNotFoundError(
        f'TinyNAS structure {spec!r} is neither a file nor one of the '
        f'shipped structures {list_structures()}')


def read_structure_file(path: str) -> List[Dict]:
    """Parse a structure file (one Python list literal; comments allowed)."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    try:
        stages = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError) as e:
        raise ValueError(f'TinyNAS structure file {path}: not a Python list '
                         f'literal of stage dicts ({e})') from e
    return stages


def load_structure(spec: StructureType,
                   allowed_classes: Sequence[str] = tuple(STAGE_CLASSES),
                   source: str = None) -> List[Dict]:
    """Load and validate a structure spec.

    Args:
        spec: Shipped name, file path, or list of stage dicts.
        allowed_classes: Stage classes (besides the stem) the caller can
            build.
        source: Name used in error messages.

    Returns:
        list[dict]: Validated deep copy, ignored keys dropped.

    Raises:
        ValueError: Naming the stage index and key when a stage has an
            unknown class, misses a key, has a non-positive integer value,
            or its ``in`` differs from the previous stage's ``out``.
    """
    if isinstance(spec, str):
        path = _resolve_path(spec)
        stages = read_structure_file(path)
        source = source or path
    else:
        stages = from_config_keys(copy.deepcopy(list(spec))) \
            if spec is not None else None
        source = source or 'inline structure'
    validate_structure(stages, allowed_classes, source)
    return [{k: v for k, v in st.items() if k not in IGNORED_KEYS}
            for st in stages]


def from_config_keys(stages):
    """``class_`` / ``in_`` -> ``class`` / ``in`` in every stage dict.

    Anything that is not a list of dicts is returned unchanged (validation
    reports it). A stage with both spellings of a key raises ValueError.
    """
    if not isinstance(stages, (list, tuple)):
        return stages
    out = []
    for idx, st in enumerate(stages):
        if hasattr(st, 'items'):
            both = [a for a, k in CONFIG_KEY_ALIASES.items()
                    if a in st and k in st]
            if both:
                raise ValueError(
                    f'stage {idx} has both {both[0]!r} and '
                    f'{CONFIG_KEY_ALIASES[both[0]]!r}; give one')
            st = {CONFIG_KEY_ALIASES.get(k, k): v for k, v in st.items()}
        out.append(st)
    return out


def to_config_keys(stages) -> List[Dict]:
    """``class`` / ``in`` -> ``class_`` / ``in_`` (the config spelling)."""
    inverse = {v: k for k, v in CONFIG_KEY_ALIASES.items()}
    return [{inverse.get(k, k): v for k, v in st.items()} for st in stages]


def validate_structure(stages, allowed_classes: Sequence[str],
                       source: str = 'structure') -> None:
    """Check a list of stage dicts; raise ``ValueError`` on the first
    problem, naming the stage index and key."""
    if not isinstance(stages, (list, tuple)) or len(stages) < 2:
        raise ValueError(f'{source}: expected a list of at least 2 stage '
                         f'dicts (stem + stages), got {stages!r:.200}')
    for idx, st in enumerate(stages):
        if not isinstance(st, dict):
            raise ValueError(f'{source}: stage {idx} must be a dict, got '
                             f'{type(st).__name__}')
        if 'class' not in st:
            raise ValueError(f"{source}: stage {idx} misses key 'class'")
        cls = st['class']
        expected = (STEM_CLASS, ) if idx == 0 else tuple(allowed_classes)
        if cls not in expected:
            raise ValueError(
                f"{source}: stage {idx} key 'class' = {cls!r} is not "
                f'supported here (expected one of {list(expected)})')
        for key in REQUIRED_KEYS[cls]:
            if key not in st:
                raise ValueError(
                    f'{source}: stage {idx} ({cls}) misses key {key!r} '
                    f'(required: {list(REQUIRED_KEYS[cls])})')
            value = st[key]
            if isinstance(value, bool) or not isinstance(value, int) \
                    or value < 1:
                raise ValueError(
                    f'{source}: stage {idx} key {key!r} must be a positive '
                    f'int, got {value!r}')
        if idx > 0 and st['s'] not in (1, 2):
            raise ValueError(f"{source}: stage {idx} key 's' must be 1 or 2, "
                             f"got {st['s']}")
        if idx > 0 and st['in'] != stages[idx - 1]['out']:
            raise ValueError(
                f"{source}: stage {idx} key 'in' = {st['in']} does not match "
                f"stage {idx - 1} key 'out' = {stages[idx - 1]['out']}")
