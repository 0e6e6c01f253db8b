"""One-call helpers: score and count a structure."""
from typing import Dict, Sequence

from .analysis import count as _count
from .scores import DAMOYOLO_STAGE_WEIGHTS, entropy_score, madnas_score
from .structure import StructureLike, load_search_structure

SCORE_TYPES = ('madnas', 'entropy')


def score(structure: StructureLike,
          score_type: str = 'madnas',
          stage_weights: Sequence[float] = DAMOYOLO_STAGE_WEIGHTS,
          block_impl: str = 'res',
          **kwargs) -> float:
    """Zero-shot MAE score of a backbone structure.

    Args:
        structure: list of block dicts (search format, stem ``in`` = 12), a
            path to a structure txt file or an official structure name.
            DAMO-YOLO-format input (stem ``in`` = 3, ``nbitsA``/``nbitsW``)
            is converted first (nbits dropped, stem ``in`` = 12).
        score_type: ``'madnas'`` (closed form, default) or ``'entropy'``
            (forward pass; ``kwargs`` go to
            :func:`damoyolo_mm.nas.scores.entropy_score`: ``batch_size``,
            ``image_size``, ``repeats``, ``seed``).
        stage_weights: one weight per down-sampling stage.
        block_impl: ``'res'`` (TinyNAS residual blocks) or ``'mobile'``
            (DAMO-YOLO-Nano inverted residuals).

    Returns:
        float: the score (for ``entropy`` the mean over repeats).
    """
    blocks = load_search_structure(structure)
    if score_type == 'madnas':
        if kwargs:
            raise TypeError(f'madnas takes no extra arguments, got '
                            f'{sorted(kwargs)}')
        return madnas_score(blocks, stage_weights, block_impl)
    if score_type == 'entropy':
        return entropy_score(blocks, stage_weights, block_impl=block_impl,
                             **kwargs)['score']
    raise ValueError(f'unknown score_type {score_type!r}; expected one of '
                     f'{SCORE_TYPES}')


def count(structure: StructureLike, image_size: int = 320,
          block_impl: str = 'res') -> Dict[str, float]:
    """Layers, params, FLOPs (and stages) in TinyNAS's own counting.

    ``image_size`` is the side of the stem input in search format (320 for a
    640 px detector input after space-to-depth).
    """
    return _count(load_search_structure(structure), image_size, block_impl)
