from .mix_transforms import (DAMOYOLOMixUp, DAMOYOLOMosaic,
                             DAMOYOLORandomAffine)
from .sada import DAMOYOLO_SADA_PARAMS, SADA

__all__ = [
    'DAMOYOLOMosaic', 'DAMOYOLORandomAffine', 'DAMOYOLOMixUp', 'SADA',
    'DAMOYOLO_SADA_PARAMS'
]
