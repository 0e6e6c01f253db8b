"""Run a model: :class:`Predictor` (one class for PyTorch and deployed
models), frame sources, drawing and the demo run of ``tools/demo.py``.

Like mmdet's ``mmdet.apis`` (inference entry points for applications).
Names are imported on first use; a deployed model needs numpy, OpenCV and
ONNX Runtime or OpenVINO only.
"""
from typing import Dict

from .._lazy import lazy_attributes

_OWNERS: Dict[str, str] = {
    'Predictor': 'predictor',
    'NumpyPreprocessor': 'predictor',
    'imread': 'predictor',
    'open_source': 'sources',
    'ThreadedReader': 'sources',
    'Frame': 'sources',
    'draw_detections': 'draw',
    'run_demo': 'demo',
}


__getattr__, __dir__ = lazy_attributes(__name__, _OWNERS)


__all__ = sorted(_OWNERS)
