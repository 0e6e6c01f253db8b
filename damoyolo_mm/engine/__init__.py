from . import hooks  # noqa: F401
from .ema import DAMOYOLOEMA

__all__ = ['DAMOYOLOEMA']
