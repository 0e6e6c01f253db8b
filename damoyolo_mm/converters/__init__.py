"""Conversion of official DAMO-YOLO checkpoint files to this implementation."""
from ..models.checkpoint.official import (CheckpointMismatchError,
                                          convert_official_state_dict,
                                          extract_official_state_dict,
                                          official_key_to_ours)
from .official import (NotAnOfficialCheckpointError,
                       convert_official_checkpoint)

__all__ = [
    'convert_official_state_dict', 'official_key_to_ours',
    'convert_official_checkpoint', 'extract_official_state_dict',
    'CheckpointMismatchError', 'NotAnOfficialCheckpointError'
]
