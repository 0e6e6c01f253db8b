from .damoyolo import DAMOYOLO

__all__ = ['DAMOYOLO']
