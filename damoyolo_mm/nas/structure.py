"""Backbone structure descriptions used by the MAE-NAS search.

A structure is a list of block dicts, a stem followed by super-blocks::

    [{'class': 'ConvKXBNRELU', 'in': 12, 'out': 24, 's': 1, 'k': 3},
     {'class': 'SuperResConvK1KX', 'in': 24, 'out': 64, 's': 2, 'k': 3,
      'L': 2, 'btn': 24},
     ...]

Two spellings of the same thing exist:

* **search format** -- what the search scores and counts: the stem reads the
  12-channel space-to-depth input (``'in': 12``) at 320x320 for a 640 image.
* **DAMO-YOLO format** -- the ``nas_backbones/*.txt`` files: the stem has
  ``'in': 3`` (the Focus layer of the detector makes the 12 channels) and the
  dicts may carry ``nbitsA`` / ``nbitsW`` quantisation keys and
  ``inner_class``.

:func:`to_search_format` converts DAMO-YOLO format to search format (drop
``nbitsA``/``nbitsW``, stem ``in`` = 12); :func:`to_damoyolo_format` goes back
(stem ``in`` = 3, ``inner_class`` added). :func:`load_structure` accepts a
list, a path to a txt file (python literal), or a name of an official
structure (see :mod:`damoyolo_mm.nas.official`).
"""
import ast
import copy
import os.path as osp
import pprint
from typing import Any, Dict, List, Sequence, Union

from damoyolo_mm.models.backbones.structure import (  # noqa: F401
    CONFIG_KEY_ALIASES, from_config_keys, to_config_keys)

StructureLike = Union[str, Sequence[Dict[str, Any]]]

STEM_CLASS = 'ConvKXBNRELU'
BLOCK_CLASSES = {
    'SuperResConvK1KX': 'ResConvK1KX',
    'SuperResConvKXKX': 'ResConvKXKX',
}
KNOWN_CLASSES = (STEM_CLASS, ) + tuple(BLOCK_CLASSES)

#: channels the search feeds the stem with (Focus space-to-depth of RGB)
SEARCH_STEM_IN = 12
#: channels of the stem in DAMO-YOLO's structure files
DAMOYOLO_STEM_IN = 3

_STEM_KEYS = ('class', 'in', 'out', 's', 'k')
_BLOCK_KEYS = ('class', 'in', 'out', 's', 'k', 'L', 'btn')
_OPTIONAL_KEYS = ('inner_class', 'nbitsA', 'nbitsW')


class StructureError(ValueError):
    """A structure description is malformed."""


def _where(source: str, idx: int) -> str:
    return f'{source}: block {idx}' if source else f'block {idx}'


def parse_structure_text(text: str, source: str = '') -> List[dict]:
    """Parse the python-literal text of a structure file.

    Lines are stripped and joined before :func:`ast.literal_eval`, as the
    DAMO-YOLO and TinyNAS loaders do.
    """
    joined = ''.join(line.strip() for line in text.splitlines())
    try:
        value = ast.literal_eval(joined)
    except (ValueError, SyntaxError) as err:
        raise StructureError(
            f'{source or "structure text"}: not a python literal list of '
            f'block dicts ({type(err).__name__}: {err})') from err
    if not isinstance(value, (list, tuple)):
        raise StructureError(
            f'{source or "structure text"}: expected a list of block dicts, '
            f'got {type(value).__name__}')
    return [dict(b) if isinstance(b, dict) else b for b in value]


def load_structure(structure: StructureLike,
                   search_format: bool = True) -> List[dict]:
    """Load and validate a structure.

    Args:
        structure: a list of block dicts, a path to a structure txt file, or
            the name of an official structure (e.g. ``'tinynas_L20_k1kx'``).
        search_format: convert DAMO-YOLO format (stem ``in`` = 3 and/or
            ``nbits`` keys) to search format (stem ``in`` = 12, no nbits).
            When False the stem ``in`` is kept as given.

    Returns:
        list[dict]: a validated deep copy.
    """
    source = ''
    if isinstance(structure, str):
        from .official import OFFICIAL_STRUCTURES
        if structure in OFFICIAL_STRUCTURES:
            source = f'official structure {structure!r}'
            blocks = copy.deepcopy(OFFICIAL_STRUCTURES[structure])
        elif osp.isfile(structure):
            source = structure
            with open(structure, encoding='utf-8') as f:
                blocks = parse_structure_text(f.read(), source)
        else:
            raise StructureError(
                f'structure {structure!r} is neither an existing file nor an '
                f'official structure name (known: '
                f'{sorted(OFFICIAL_STRUCTURES)})')
    elif isinstance(structure, (list, tuple)):
        # configs spell the keyword keys class_ / in_
        blocks = from_config_keys(copy.deepcopy(list(structure)))
    else:
        raise StructureError(
            'structure must be a list of block dicts, a file path or an '
            f'official structure name, got {type(structure).__name__}')
    if search_format:
        blocks = to_search_format(blocks, source=source)
    validate_structure(blocks, source=source)
    return blocks


def validate_structure(blocks: Sequence[dict], source: str = '') -> None:
    """Check keys, classes and channel chaining; raise StructureError."""
    if len(blocks) < 2:
        raise StructureError(
            f'{source or "structure"}: needs a stem and at least one '
            f'super-block, got {len(blocks)} block(s)')
    for idx, b in enumerate(blocks):
        where = _where(source, idx)
        if not isinstance(b, dict):
            raise StructureError(
                f'{where}: expected a dict, got {type(b).__name__}')
        cls = b.get('class')
        if cls not in KNOWN_CLASSES:
            raise StructureError(
                f'{where}: unknown block class {cls!r}; expected one of '
                f'{list(KNOWN_CLASSES)}')
        if idx == 0 and cls != STEM_CLASS:
            raise StructureError(
                f'{where}: the first block must be the stem {STEM_CLASS!r}, '
                f'got {cls!r}')
        if idx > 0 and cls == STEM_CLASS:
            raise StructureError(
                f'{where}: {STEM_CLASS!r} is only allowed as the first block')
        required = _STEM_KEYS if cls == STEM_CLASS else _BLOCK_KEYS
        missing = [k for k in required if k not in b]
        if missing:
            raise StructureError(
                f'{where} ({cls}): missing key(s) {missing}; a {cls} needs '
                f'{list(required)}')
        unknown = [k for k in b if k not in required + _OPTIONAL_KEYS]
        if unknown:
            raise StructureError(
                f'{where} ({cls}): unknown key(s) {unknown}; allowed '
                f'{list(required + _OPTIONAL_KEYS)}')
        for k in required[1:]:
            v = b[k]
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise StructureError(
                    f'{where} ({cls}): {k!r} must be a positive int, got '
                    f'{v!r}')
        if b['s'] not in (1, 2):
            raise StructureError(
                f'{where} ({cls}): stride s must be 1 or 2, got {b["s"]}')
        if b['k'] % 2 != 1:
            raise StructureError(
                f'{where} ({cls}): kernel k must be odd, got {b["k"]}')
        if cls in BLOCK_CLASSES and 'inner_class' in b and \
                b['inner_class'] != BLOCK_CLASSES[cls]:
            raise StructureError(
                f'{where} ({cls}): inner_class {b["inner_class"]!r} does not '
                f'match, expected {BLOCK_CLASSES[cls]!r}')
        if idx > 0 and b['in'] != blocks[idx - 1]['out']:
            raise StructureError(
                f'{where} ({cls}): in={b["in"]} does not match the previous '
                f'block out={blocks[idx - 1]["out"]}')


def to_search_format(blocks: Sequence[dict], source: str = '') -> List[dict]:
    """DAMO-YOLO format -> search format.

    Drops ``nbitsA``/``nbitsW`` (DAMO-YOLO deletes them on load; the search
    scores non-quantised nets) and ``inner_class``, and sets the stem input
    to 12 channels (the Focus output the search assumed). A structure already
    in search format is returned unchanged (as a copy).
    """
    out = []
    for idx, b in enumerate(blocks):
        if not isinstance(b, dict):
            raise StructureError(
                f'{_where(source, idx)}: expected a dict, got '
                f'{type(b).__name__}')
        b = {k: v for k, v in b.items()
             if k not in ('nbitsA', 'nbitsW', 'inner_class')}
        out.append(b)
    if out and out[0].get('class') == STEM_CLASS and \
            out[0].get('in') == DAMOYOLO_STEM_IN:
        out[0]['in'] = SEARCH_STEM_IN
    return out


def to_damoyolo_format(blocks: Sequence[dict]) -> List[dict]:
    """Search format -> DAMO-YOLO structure-file format (stem ``in`` = 3)."""
    out = []
    for idx, b in enumerate(blocks):
        b = {k: v for k, v in b.items() if k not in ('nbitsA', 'nbitsW')}
        if idx == 0:
            b['in'] = DAMOYOLO_STEM_IN
        elif b['class'] in BLOCK_CLASSES:
            b['inner_class'] = BLOCK_CLASSES[b['class']]
        out.append(b)
    return out


def format_structure(blocks: Sequence[dict]) -> str:
    """Pretty text of a structure (a python literal, as TinyNAS writes)."""
    return pprint.pformat(list(blocks), indent=2, width=100) + '\n'


def save_structure_txt(blocks: Sequence[dict], path: str,
                       damoyolo_format: bool = True) -> None:
    """Write a structure file (DAMO-YOLO format by default)."""
    if damoyolo_format:
        blocks = to_damoyolo_format(blocks)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(format_structure(blocks))
