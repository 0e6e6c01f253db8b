from .damoyolo import DAMOYOLO
from .strict_load import (PartialLoad, StateDictMismatchError, match_variant,
                          variant_fingerprint)

__all__ = [
    'DAMOYOLO', 'PartialLoad', 'StateDictMismatchError', 'match_variant',
    'variant_fingerprint'
]
