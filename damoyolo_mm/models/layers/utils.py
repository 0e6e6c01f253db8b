"""Small helpers shared by the DAMO-YOLO layers."""
import math
from typing import Optional

#: BatchNorm settings of DAMO-YOLO (eps 1e-3, momentum 0.03 everywhere).
DEFAULT_NORM_CFG = dict(type='BN', momentum=0.03, eps=0.001)


def make_divisible(value: float,
                   divisor: int = 8,
                   min_value: Optional[int] = None,
                   min_ratio: float = 0.9) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``.

    The result is at least ``min_value`` (default ``divisor``) and never
    drops below ``min_ratio * value`` (one more ``divisor`` is added then).
    """
    if min_value is None:
        min_value = divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < min_ratio * value:
        new_value += divisor
    return new_value


def expanded_channels(out_channels: int, expand_ratio: float) -> int:
    """Hidden width of an inverted-residual block: ``ceil(out * ratio)``
    made divisible by 8."""
    return make_divisible(math.ceil(out_channels * expand_ratio))
