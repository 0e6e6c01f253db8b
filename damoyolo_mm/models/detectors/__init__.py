from .complexity import get_model_complexity
from .convert import (CheckpointMismatchError, convert_official_checkpoint,
                      convert_official_state_dict,
                      extract_official_state_dict, official_key_to_ours)
from .damoyolo import DAMOYOLO
from .variants import VARIANTS, variant_config, variant_test_size

__all__ = [
    'DAMOYOLO', 'convert_official_state_dict', 'official_key_to_ours',
    'convert_official_checkpoint', 'extract_official_state_dict',
    'CheckpointMismatchError', 'get_model_complexity', 'VARIANTS',
    'variant_config', 'variant_test_size'
]
