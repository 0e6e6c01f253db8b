"""Utilities. Names are imported from their submodules on first use, so
that ``damoyolo_mm.utils.fileio`` (atomic writes) needs no torch."""
from typing import Dict

_OWNERS: Dict[str, str] = {
    'TRUST_ENV': 'checkpoint_trust',
    'UntrustedPickleError': 'checkpoint_trust',
    'load_checkpoint_file': 'checkpoint_trust',
    'trust_pickle': 'checkpoint_trust',
    'register_all_modules': 'setup_env',
}


def __getattr__(name: str):
    module = _OWNERS.get(name)
    if module is None:
        raise AttributeError(
            f'module {__name__!r} has no attribute {name!r}')
    import importlib
    value = getattr(importlib.import_module(f'{__name__}.{module}'), name)
    globals()[name] = value
    return value


__all__ = [
    'register_all_modules', 'trust_pickle', 'load_checkpoint_file',
    'UntrustedPickleError', 'TRUST_ENV'
]
