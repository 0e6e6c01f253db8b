"""Model analysis: parameter and FLOP counts in the paper's convention."""
from .complexity import get_model_complexity, reparameterize

__all__ = ['get_model_complexity', 'reparameterize']
