"""Run a model: :class:`Predictor` (one class for PyTorch and deployed
models), frame sources, drawing and the demo run of ``tools/demo.py``.

Like mmdet's ``mmdet.apis`` (inference entry points for applications).
Names are imported on first use; a deployed model needs numpy, OpenCV and
ONNX Runtime or OpenVINO only.
"""
from typing import Dict

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


def __getattr__(name: str):
    module = _OWNERS.get(name)
    if module is None:
        raise AttributeError(
            f'module {__name__!r} has no attribute {name!r}')
    import importlib
    value = getattr(importlib.import_module(f'{__name__}.{module}'), name)
    globals()[name] = value
    return value


__all__ = sorted(_OWNERS)
