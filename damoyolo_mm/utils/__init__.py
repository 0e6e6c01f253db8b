from .checkpoint_trust import (TRUST_ENV, UntrustedPickleError,
                               load_checkpoint_file, trust_pickle)
from .setup_env import register_all_modules

__all__ = [
    'register_all_modules', 'trust_pickle', 'load_checkpoint_file',
    'UntrustedPickleError', 'TRUST_ENV'
]
