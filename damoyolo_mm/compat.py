"""Compatibility of the pinned OpenMMLab stack with torch 2.13 / numpy 2.

Imported first by ``damoyolo_mm``. Its only process-wide effect is an
allow-list for torch's safe checkpoint loader (``weights_only=True``);
``torch.load`` is not replaced. (``damoyolo_mm`` then registers mmengine's
checkpoint loaders wrapped so that config text in a checkpoint is never
executed: :mod:`damoyolo_mm.utils.checkpoint_metadata`.)

torch >= 2.6 loads checkpoints with ``weights_only=True`` by default: tensors
and plain containers only. mmengine 0.10.7's checkpoints also hold the
runner's message hub, i.e. ``mmengine.logging.HistoryBuffer`` objects with
numpy arrays, numpy scalars (evaluation metrics) and, from
``HistoryBuffer.__getstate__``, its statistics methods pickled as
``getattr(HistoryBuffer, 'min' | 'max' | 'current' | 'mean')``. Without help
``load_from``, ``--resume``, ``tools/test.py`` and ``init_detector`` fail with
``UnpicklingError: Weights only load failed``.

:data:`SAFE_GLOBALS` names exactly those types (plus the numpy 1.x names of
the same numpy functions, which older checkpoints use). ``builtins.getattr``
itself is not allowed: its name maps to :func:`history_buffer_method`, which
returns one of those four methods and refuses everything else. The
checkpoints this project writes do not need even that
(:class:`~damoyolo_mm.engine.hooks.AtomicCheckpointHook` saves the message
hub without the methods); it lets checkpoints written by plain mmengine
(e.g. mmdet's released weights) load without full unpickling.

Full unpickling is an explicit per-file opt-in, see
:mod:`damoyolo_mm.utils.checkpoint_trust`.
"""
import numpy as np
import torch
from mmengine.logging import HistoryBuffer

_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def history_buffer_method(obj, name: str):
    """Stands in for ``builtins.getattr`` in ``weights_only`` loads: only
    ``getattr(HistoryBuffer, 'min' | 'max' | 'current' | 'mean')``."""
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise torch.serialization.pickle.UnpicklingError(
        f'getattr({getattr(obj, "__name__", type(obj).__name__)}, {name!r}) '
        'is not allowed in a weights_only checkpoint (only the statistics '
        'methods of mmengine.logging.HistoryBuffer are)')


def _numpy_globals() -> list:
    multiarray = np._core.multiarray if hasattr(np, '_core') else \
        np.core.multiarray
    found = [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype]
    # numpy 1.x pickles these under numpy.core.multiarray
    found += [(multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
              (multiarray.scalar, 'numpy.core.multiarray.scalar')]
    # BUILD of a dtype checks the dtype's class (numpy.dtypes.Float64DType..)
    found += sorted({type(np.dtype(code)) for code in np.typecodes['All']
                     if code not in 'Mm'} | {
                         type(np.dtype('M8[s]')), type(np.dtype('m8[s]'))},
                    key=lambda t: t.__name__)
    return found


#: Everything a weights_only load of an mmengine checkpoint may meet beyond
#: tensors and plain containers.
SAFE_GLOBALS = [HistoryBuffer, (history_buffer_method, 'builtins.getattr')
                ] + _numpy_globals()

_APPLIED = False


def apply() -> None:
    """Register :data:`SAFE_GLOBALS` with torch (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    torch.serialization.add_safe_globals(SAFE_GLOBALS)
    _APPLIED = True


apply()
