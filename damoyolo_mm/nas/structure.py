"""Backbone structures as the MAE-NAS search reads and writes them.

Parsing, name lookup and validation belong to
:mod:`damoyolo_mm.models.backbones.structure`; this module only adds what is
search-specific. A structure is a list of block dicts, a stem followed by
super-blocks::

    [{'class': 'ConvKXBNRELU', 'in': 12, 'out': 24, 's': 1, 'k': 3},
     {'class': 'SuperResConvK1KX', 'in': 24, 'out': 64, 's': 2, 'k': 3,
      'L': 2, 'btn': 24},
     ...]

Two spellings of the same thing exist:

* **search format** -- what the search scores and counts: the stem reads the
  12-channel space-to-depth input (``'in': 12``) at 320x320 for a 640 image.
* **DAMO-YOLO format** -- the structure ``*.txt`` files: the stem has
  ``'in': 3`` (the Focus layer of the detector makes the 12 channels) and the
  dicts may carry ``nbitsA`` / ``nbitsW`` quantisation keys and
  ``inner_class``.

:func:`to_search_format` converts DAMO-YOLO format to search format (drop
``nbitsA``/``nbitsW``, stem ``in`` = 12); :func:`to_damoyolo_format` goes back
(stem ``in`` = 3, ``inner_class`` added). :func:`load_search_structure`
accepts a list, a path to a txt file (python literal), or the name of a
shipped structure: the official backbones
(``damoyolo_mm/models/backbones/structures``) and the search start points
(``damoyolo_mm/nas/structures``, e.g. ``'mae_nas_init_k1kx'``).
"""
import os.path as osp
import pprint
from typing import Any, Dict, List, Sequence, Union

from damoyolo_mm.models.backbones.structure import (IGNORED_KEYS,
                                                    IMAGE_STEM_IN,
                                                    INNER_CLASSES, STEM_CLASS,
                                                    STRUCTURE_DIR,
                                                    StructureError,
                                                    list_structures,
                                                    load_structure)
from damoyolo_mm.models.backbones.structure import (  # noqa: F401
    CONFIG_KEY_ALIASES, from_config_keys, to_config_keys)

StructureLike = Union[str, Sequence[Dict[str, Any]]]

BLOCK_CLASSES = INNER_CLASSES
KNOWN_CLASSES = (STEM_CLASS, ) + tuple(BLOCK_CLASSES)

#: channels the search feeds the stem with (Focus space-to-depth of RGB)
SEARCH_STEM_IN = 12
#: channels of the stem in DAMO-YOLO's structure files
DAMOYOLO_STEM_IN = IMAGE_STEM_IN

#: the search start points shipped with the package
SEARCH_STRUCTURE_DIR = osp.join(osp.dirname(osp.abspath(__file__)),
                                'structures')
STRUCTURE_DIRS = (STRUCTURE_DIR, SEARCH_STRUCTURE_DIR)
#: names of the official DAMO-YOLO backbone structures (the shipped files)
OFFICIAL_STRUCTURES = tuple(list_structures())
#: the start structure of the DAMO-YOLO searches, per block class
INIT_STRUCTURES = {
    'SuperResConvK1KX': 'mae_nas_init_k1kx',
    'SuperResConvKXKX': 'mae_nas_init_kxkx',
}

__all__ = [
    'StructureError', 'load_search_structure', 'to_search_format',
    'to_damoyolo_format', 'format_structure', 'save_structure_txt',
    'damoyolo_init_structure', 'OFFICIAL_STRUCTURES', 'STEM_CLASS'
]


def load_search_structure(structure: StructureLike,
                          search_format: bool = True) -> List[dict]:
    """Load and validate a structure the way the search needs it.

    Args:
        structure: a list of block dicts, a path to a structure txt file, or
            the name of a shipped structure (e.g. ``'tinynas_L20_k1kx'``).
        search_format: convert DAMO-YOLO format (stem ``in`` = 3 and/or
            ``nbits`` keys) to search format (stem ``in`` = 12, no nbits).
            When False the stem ``in`` and all keys are kept as given.

    Returns:
        list[dict]: a validated deep copy.
    """
    return load_structure(
        structure, tuple(BLOCK_CLASSES),
        strict=True,
        stem_in=SEARCH_STEM_IN if search_format else None,
        drop_keys=IGNORED_KEYS if search_format else (),
        structure_dirs=STRUCTURE_DIRS)


def damoyolo_init_structure(block_class: str = 'SuperResConvK1KX'
                            ) -> List[dict]:
    """The initial structure the official DAMO-YOLO searches start from
    (search format)."""
    if block_class not in INIT_STRUCTURES:
        raise StructureError(f'no search start structure for block class '
                             f'{block_class!r}; known: '
                             f'{sorted(INIT_STRUCTURES)}')
    return load_search_structure(INIT_STRUCTURES[block_class])


def to_search_format(blocks: Sequence[dict], source: str = '') -> List[dict]:
    """DAMO-YOLO format -> search format.

    Drops ``nbitsA``/``nbitsW`` (DAMO-YOLO deletes them on load; the search
    scores non-quantised nets) and ``inner_class``, and sets the stem input
    to 12 channels (the Focus output the search assumed). A structure already
    in search format is returned unchanged (as a copy).
    """
    return load_structure(list(blocks), tuple(BLOCK_CLASSES),
                          source=source or None, strict=True,
                          stem_in=SEARCH_STEM_IN)


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
