"""damoyolo_mm: DAMO-YOLO as an MMDetection 3.x plugin.

Importing this package (directly or through ``custom_imports`` in an mmdet
config) registers every module of the plugin into the mmdet / mmengine
registries.

Where mmdet is not installed (an environment that only runs deployed
models: numpy, OpenCV, ONNX Runtime or OpenVINO), importing it registers
nothing, so that :mod:`damoyolo_mm.deploy.runtime` and
:mod:`damoyolo_mm.apis` work there. ``custom_imports`` is read by mmengine
for mmdet configs, so it always finds mmdet installed and registers; an
installed but broken stack (e.g. mmcv without its ops) still fails here.
"""
from ._installed import installed
from .version import __version__, version_info

if installed('mmdet'):
    from . import compat  # noqa: F401  (before anything loads checkpoints)
    from .utils import checkpoint_metadata as _checkpoint_metadata

    # mmengine's checkpoint loaders, registered again wrapped: what they
    # load carries no config text (never executed), a refused pickle raises
    # the project's message (damoyolo_mm/utils/checkpoint_metadata.py)
    _checkpoint_metadata.register()
    from . import datasets, engine, models, nas  # noqa: F401,E402

__all__ = ['__version__', 'version_info']
