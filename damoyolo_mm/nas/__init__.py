"""MAE-NAS: zero-shot backbone search for DAMO-YOLO.

* :func:`score` -- MAE score of a structure (``'madnas'`` closed form, the
  default and what the DAMO-YOLO searches used; ``'entropy'`` forward pass).
* :func:`count` -- layers / params / FLOPs in TinyNAS's counting.
* search spaces (:mod:`.spaces`), budgets (:mod:`.budget`), latency tables
  (:mod:`.latency`), the evolutionary search (:mod:`.evolution`) and the
  config-driven :class:`NASSearchRunner` (:mod:`.runner`).

Structures are lists of block dicts in search format (stem ``in`` = 12),
loaded with :func:`load_search_structure` (parsing and validation are those
of :mod:`damoyolo_mm.models.backbones.structure`).
DAMO-YOLO structure files (stem ``in`` = 3, ``nbitsA``/``nbitsW`` keys) are
accepted everywhere and converted with :func:`to_search_format` (nbits
dropped, stem ``in`` = 12); :func:`to_damoyolo_format` converts back.
"""
from .analysis import conv_chain, stage_info, structure_ops
from .api import count, score
from .budget import Budget, BudgetError
from .evolution import EvolutionSearch, Population, minimum_reachable
from .latency import LatencyLUT, LatencyLUTError
from .registry import NAS_SCORES, NAS_SPACES
from .runner import NASSearchRunner, SearchConfigError
from .scores import (EntropyScore, MadnasScore, entropy_score,
                     madnas_details, madnas_score)
from .spaces import (NanoMobileSpace, ResK1KXSpace, ResKXKXSpace,
                     SpaceConfigError)
from .structure import (OFFICIAL_STRUCTURES, StructureError,
                        damoyolo_init_structure, load_search_structure,
                        save_structure_txt, to_damoyolo_format,
                        to_search_format)

__all__ = [
    'score', 'count', 'load_search_structure', 'to_search_format',
    'to_damoyolo_format', 'save_structure_txt', 'StructureError',
    'madnas_score', 'madnas_details', 'entropy_score', 'MadnasScore',
    'EntropyScore', 'ResK1KXSpace', 'ResKXKXSpace', 'NanoMobileSpace',
    'SpaceConfigError', 'Budget', 'BudgetError', 'LatencyLUT',
    'LatencyLUTError', 'EvolutionSearch', 'Population', 'minimum_reachable',
    'NASSearchRunner', 'SearchConfigError', 'NAS_SPACES', 'NAS_SCORES',
    'OFFICIAL_STRUCTURES', 'damoyolo_init_structure', 'conv_chain',
    'stage_info', 'structure_ops'
]
