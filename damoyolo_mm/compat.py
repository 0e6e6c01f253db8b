"""Compatibility fixes for the pinned OpenMMLab stack on torch 2.13 / numpy 2.

Every workaround for an upstream incompatibility of the stack lives here, each
with the version that breaks and why. Imported first by ``damoyolo_mm``.

1. torch >= 2.6 changed ``torch.load``'s default to ``weights_only=True``.
   mmengine 0.10.7's checkpoints carry a pickled message hub (``HistoryBuffer``,
   numpy scalars, ``builtins.getattr``), so ``load_from``, ``--resume``,
   ``tools/test.py`` and ``init_detector`` fail with ``UnpicklingError: Weights
   only load failed``. Allow-listing globals is unsafe because of ``getattr``;
   instead mmengine's *local file* checkpoint scheme (the one used for files
   the user points at) loads with ``weights_only=False``. Remote schemes keep
   torch's safe default.
"""
import os.path as osp

import torch
from mmengine.runner.checkpoint import CheckpointLoader

_PATCHED = False


def _load_from_local_trusted(filename, map_location):
    """mmengine's ``load_from_local`` with ``weights_only=False``."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=False)


def apply() -> None:
    """Apply the fixes once (idempotent)."""
    global _PATCHED
    if _PATCHED:
        return
    CheckpointLoader.register_scheme(
        prefixes='', loader=_load_from_local_trusted, force=True)
    _PATCHED = True


apply()
