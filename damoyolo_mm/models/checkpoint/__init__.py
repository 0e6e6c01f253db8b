"""How checkpoints load into our models: official-layout conversion and the
strict check (with declared partial loading)."""
from .official import (CheckpointMismatchError, coco_dataset_meta,
                       convert_official_in_place, convert_official_state_dict,
                       extract_official_state_dict, is_official_checkpoint,
                       official_key_to_ours)
from .strict_load import (PartialLoad, StateDictMismatchError,
                          check_state_dict, match_variant,
                          variant_fingerprint)

__all__ = [
    'CheckpointMismatchError', 'coco_dataset_meta',
    'convert_official_in_place', 'convert_official_state_dict',
    'extract_official_state_dict', 'is_official_checkpoint',
    'official_key_to_ours', 'PartialLoad', 'StateDictMismatchError',
    'check_state_dict', 'match_variant', 'variant_fingerprint'
]
