from .complexity import get_model_complexity
from .convert import (CheckpointMismatchError, NotAnOfficialCheckpointError,
                      convert_official_checkpoint,
                      convert_official_state_dict,
                      extract_official_state_dict, official_key_to_ours)
from .damoyolo import DAMOYOLO
from .strict_load import (PartialLoad, StateDictMismatchError, match_variant,
                          variant_fingerprint)
from .variants import VARIANTS, variant_config, variant_test_size

__all__ = [
    'DAMOYOLO', 'convert_official_state_dict', 'official_key_to_ours',
    'convert_official_checkpoint', 'extract_official_state_dict',
    'CheckpointMismatchError', 'NotAnOfficialCheckpointError',
    'get_model_complexity', 'VARIANTS',
    'variant_config', 'variant_test_size', 'PartialLoad',
    'StateDictMismatchError', 'match_variant', 'variant_fingerprint'
]
