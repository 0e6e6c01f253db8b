"""damoyolo_mm: DAMO-YOLO as an MMDetection 3.x plugin.

Importing this package (directly or through ``custom_imports`` in an mmdet
config) registers every module of the plugin into the mmdet / mmengine
registries.

Where the training stack (torch, mmengine, mmcv, mmdet) is not installed,
importing it registers nothing, so that the parts that run deployed models
(:mod:`damoyolo_mm.deploy.runtime`, :mod:`damoyolo_mm.apis`) work with
numpy, OpenCV and ONNX Runtime or OpenVINO alone.
"""
from ._installed import TRAINING_STACK, installed
from .version import __version__, version_info

if all(installed(name) for name in TRAINING_STACK):
    from . import compat  # noqa: F401  (before anything loads checkpoints)
    from . import datasets, engine, models, nas  # noqa: F401,E402

__all__ = ['__version__', 'version_info']
