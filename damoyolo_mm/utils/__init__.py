"""Utilities. Names are imported from their submodules on first use, so
that ``damoyolo_mm.utils.fileio`` (atomic writes) needs no torch."""
from typing import Dict

from .._lazy import lazy_attributes

_OWNERS: Dict[str, str] = {
    'TRUST_ENV': 'checkpoint_trust',
    'UntrustedPickleError': 'checkpoint_trust',
    'load_checkpoint_file': 'checkpoint_trust',
    'trust_pickle': 'checkpoint_trust',
    'register_all_modules': 'setup_env',
}


__getattr__, __dir__ = lazy_attributes(__name__, _OWNERS)


__all__ = [
    'register_all_modules', 'trust_pickle', 'load_checkpoint_file',
    'UntrustedPickleError', 'TRUST_ENV'
]
