from . import transforms  # noqa: F401
from .coco_checked import (BadAnnotationError, BadImageError,
                           DAMOYOLOCocoDataset)
from .coco_subset import coco_subset
from .demo_data import (DEMO_CLASSES, DEMO_DATA_ROOT, demo_dataset_exists,
                        generate_demo_dataset)
from .mix_dataset import DAMOYOLOMixDataset

__all__ = [
    'DEMO_CLASSES', 'DEMO_DATA_ROOT', 'demo_dataset_exists',
    'generate_demo_dataset', 'DAMOYOLOCocoDataset', 'BadImageError',
    'BadAnnotationError', 'coco_subset', 'DAMOYOLOMixDataset'
]
