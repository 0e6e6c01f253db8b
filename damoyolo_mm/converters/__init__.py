"""Conversion of official DAMO-YOLO checkpoints to this implementation."""
from .official import (CheckpointMismatchError, NotAnOfficialCheckpointError,
                       convert_official_checkpoint,
                       convert_official_state_dict,
                       extract_official_state_dict, official_key_to_ours)

__all__ = [
    'convert_official_state_dict', 'official_key_to_ours',
    'convert_official_checkpoint', 'extract_official_state_dict',
    'CheckpointMismatchError', 'NotAnOfficialCheckpointError'
]
