from .complexity import get_model_complexity
from .convert import convert_official_state_dict, official_key_to_ours
from .damoyolo import DAMOYOLO

__all__ = [
    'DAMOYOLO', 'convert_official_state_dict', 'official_key_to_ours',
    'get_model_complexity'
]
