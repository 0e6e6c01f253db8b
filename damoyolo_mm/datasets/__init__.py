from . import transforms  # noqa: F401
from .demo_data import generate_demo_dataset

__all__ = ['generate_demo_dataset']
