from .zero_head import Integral, ZeroHead

__all__ = ['ZeroHead', 'Integral']
