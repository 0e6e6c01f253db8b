"""damoyolo_mm: DAMO-YOLO as an MMDetection 3.x plugin.

Importing this package (directly or through ``custom_imports`` in an mmdet
config) registers every module of the plugin into the mmdet / mmengine
registries.
"""
from . import compat  # noqa: F401  (must run before anything loads checkpoints)
from .utils import checkpoint_metadata as _checkpoint_metadata

# mmengine's checkpoint loaders, registered again wrapped: what they load
# carries no config text (never executed), a refused pickle raises the
# project's message (damoyolo_mm/utils/checkpoint_metadata.py)
_checkpoint_metadata.register()
from .version import __version__, version_info

from . import datasets, engine, models, nas  # noqa: F401,E402

__all__ = ['__version__', 'version_info']
