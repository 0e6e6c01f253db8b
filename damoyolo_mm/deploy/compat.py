"""MMDeploy 1.3.1 on torch 2.13 / TensorRT 10: every fix in one place.

MMDeploy 1.3.1 (2023) predates torch 2.9 and TensorRT 10. What breaks and
what this module does about it:

1. torch >= 2.9: ``torch.onnx.export`` defaults to ``dynamo=True``. MMDeploy
   calls it without ``dynamo=`` so the export fails (``No module named
   'onnxscript'``; with onnxscript installed the dynamo exporter ignores
   MMDeploy's function/symbolic rewriters and fails on the NMS op).
   Fix: a MMDeploy ``FUNCTION_REWRITER`` for ``torch.onnx.export`` that
   passes ``dynamo=False`` (the TorchScript exporter, still in torch 2.13).
   The rewriter is only active inside MMDeploy's ``RewriterContext``, so
   nothing changes for code outside an MMDeploy export.
   :func:`onnx_export` does the same for this package's own exports.
2. torch >= 2.9 moved the TorchScript exporter to
   ``torch.onnx._internal.torchscript_exporter``; ``torch.onnx.utils`` and
   ``torch.onnx.symbolic_*`` are re-exporting shims. MMDeploy's rewriter of
   ``torch.onnx.utils._model_to_graph`` still takes effect because MMDeploy
   replaces every module-dict reference to the function object
   (``_replace_all_obj``), including the one inside the internal module.
   The private ``symbolic_helper`` functions MMDeploy's symbolics use
   (``_is_value``, ``parse_args``, ``_slice_helper``, ...) still exist.
   ``torch.onnx.symbolic_opset11._prepare_onnx_paddings`` and
   ``symbolic_opset9._generic_rnn`` are gone: MMDeploy logs "Can not find
   ..." for its pad (all backends) and ncnn LSTM rewriters; neither is
   used by a DAMO-YOLO graph (zero padding is part of the conv node).
   No fix needed; :func:`check_torch_onnx` asserts the facts relied upon.
3. TensorRT 10 removed the binding API (``get_binding_index``,
   ``binding_is_input``, ``set_binding_shape``, ``execute_async_v2``) that
   MMDeploy's TensorRT wrapper and ``onnx2tensorrt`` use, and MMDeploy's
   ``TRTBatchedNMS`` plugin library is built against TensorRT 8 / CUDA 11
   and does not load. This cannot be patched in a small way, so TensorRT
   goes through :mod:`damoyolo_mm.deploy.tensorrt`: ONNX (opset 13) ending
   in TensorRT's stock ``EfficientNMS_TRT`` plugin, engine built and run
   with the TensorRT 10 name-based Python API. TensorRT 11 also dropped
   ``BuilderFlag.FP16`` (FP16 needs a strongly typed half-precision ONNX);
   :func:`check_tensorrt` rejects it for FP16 builds with a clear message.
4. OpenVINO >= 2025: MMDeploy's OpenVINO backend converts with the ``mo``
   command (Model Optimizer, removed in OpenVINO 2025) and runs with
   ``openvino.inference_engine.IECore`` (removed in 2024). Fix: its backend
   manager's ``to_backend`` / ``build_wrapper`` are pointed at
   :mod:`damoyolo_mm.deploy.openvino` (``openvino.convert_model``,
   ``openvino.Core``), which writes the same ``end2end.xml`` / ``.bin``.
5. MMDeploy pins ``protobuf<=3.20.2`` (only its SNPE backend needs it),
   which conflicts with onnx >= 1.16: install MMDeploy with ``--no-deps``
   and its real runtime dependencies from the ``deploy`` extra.
"""
from typing import Any

# the package names and install hints live with the runtime (torch-free)
from .runtime import INSTALL_HINTS, require

_APPLIED = False


def onnx_export(*args, **kwargs) -> None:
    """``torch.onnx.export`` with the TorchScript exporter (``dynamo=False``).

    See fix 1 of this module. An explicit ``dynamo=`` of the caller wins.
    """
    import torch
    kwargs.setdefault('dynamo', False)
    torch.onnx.export(*args, **kwargs)


def check_torch_onnx() -> None:
    """Fail early and clearly if the TorchScript ONNX exporter is missing."""
    import inspect

    import torch
    if 'dynamo' in inspect.signature(torch.onnx.export).parameters:
        # torch >= 2.5: the TorchScript exporter must still be there
        import importlib
        try:
            importlib.import_module(
                'torch.onnx._internal.torchscript_exporter.utils')
        except ImportError:  # torch < 2.9 layout
            importlib.import_module('torch.onnx.utils')
    from torch.onnx import symbolic_helper
    missing = [
        n for n in ('_is_value', 'parse_args', '_slice_helper')
        if not hasattr(symbolic_helper, n)
    ]
    if missing:
        raise RuntimeError(
            f'torch {torch.__version__}: torch.onnx.symbolic_helper lacks '
            f'{missing}, which MMDeploy 1.3.1 needs; use torch <= 2.13')


def check_tensorrt(fp16: bool = False) -> Any:
    """Import TensorRT >= 10 (with a GPU) or raise saying what is missing.

    Args:
        fp16 (bool): FP16 engine requested (TensorRT 11 has no FP16 flag).

    Returns:
        module: the ``tensorrt`` module.
    """
    trt = require('tensorrt')
    major = int(str(trt.__version__).split('.')[0])
    if major < 10:
        raise ImportError(
            f'tensorrt {trt.__version__} found; the engine builder and runner '
            'use the TensorRT 10 name-based API. Install it with: '
            f'{INSTALL_HINTS["tensorrt"]}')
    if fp16 and not hasattr(trt.BuilderFlag, 'FP16'):
        raise ImportError(
            f'tensorrt {trt.__version__} has no BuilderFlag.FP16 (removed in '
            'TensorRT 11: FP16 needs a strongly typed half-precision ONNX). '
            f'Install TensorRT 10: {INSTALL_HINTS["tensorrt"]}')
    import torch
    if not torch.cuda.is_available():
        raise RuntimeError(
            'TensorRT needs an NVIDIA GPU: torch.cuda.is_available() is False '
            f'(torch {torch.__version__}). Build and run engines on a machine '
            'with a GPU, a CUDA driver and a CUDA build of torch.')
    return trt


def apply() -> None:
    """Register the MMDeploy fixes (idempotent). Needs mmdeploy."""
    global _APPLIED
    if _APPLIED:
        return
    require('mmdeploy')
    check_torch_onnx()
    from mmdeploy.core import FUNCTION_REWRITER

    @FUNCTION_REWRITER.register_rewriter(func_name='torch.onnx.export')
    def torch_onnx_export__torchscript(*args, **kwargs):
        """Fix 1: MMDeploy's exports use the TorchScript exporter."""
        ctx = FUNCTION_REWRITER.get_context()
        kwargs.setdefault('dynamo', False)
        return ctx.origin_func(*args, **kwargs)

    # fix 4: MMDeploy's OpenVINO backend on the current openvino API
    from .openvino import patch_mmdeploy_openvino
    patch_mmdeploy_openvino()
    _APPLIED = True
