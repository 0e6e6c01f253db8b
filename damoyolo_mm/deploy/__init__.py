"""Deployment of DAMO-YOLO: ONNX Runtime and OpenVINO through MMDeploy,
TensorRT 10, INT8 partial quantization (QDQ ONNX).

Import ``damoyolo_mm.deploy`` explicitly (``import damoyolo_mm`` does not):
it needs the ``deploy`` extra (``mmdeploy==1.3.1`` installed with
``--no-deps``, onnx, onnxruntime, ...). With MMDeploy present, importing it
applies the torch 2.13 fixes of :mod:`.compat` and registers the rewriters
of :mod:`.rewriters`; without it, the functions that need MMDeploy raise an
ImportError saying what to install.

Both are registrations in MMDeploy's rewriter registry, active only inside
MMDeploy's export context: importing this module changes nothing else in the
process (``torch.onnx.export`` itself is untouched). The deploy configs
import it through ``custom_imports``, so MMDeploy's own ``tools/deploy.py``
works with them.
"""
import importlib.util

from .compat import (INSTALL_HINTS, apply, check_tensorrt, onnx_export,
                     require)
from .export import (SUPPORTED_BACKENDS, build_model, build_trt_engine,
                     check_backend_available, check_post_processing,
                     export_onnx, get_backend_name, get_input_hw,
                     get_test_cfg, load_configs, match_detections,
                     ort_detections, ort_session)
from .openvino import (OpenVINOWrapper, input_shapes_from_cfg,
                       onnx2openvino, ov_compile, ov_detections, ov_run)
from .quantization import (CALIB_DEFAULTS, export_int8, get_calib_config,
                           get_precision, quantize_onnx)
from .tensorrt import (EFFICIENT_NMS_MAX_CANDIDATES, TRT_OUTPUT_NAMES,
                       EfficientNMSOp, End2EndTRT, RawOutputs, TRTRunner,
                       build_engine, check_input_shape, export_trt_onnx)

if importlib.util.find_spec('mmdeploy') is not None:
    apply()
    from . import rewriters  # noqa: F401,E402

__all__ = [
    'INSTALL_HINTS', 'apply', 'check_tensorrt', 'onnx_export', 'require',
    'SUPPORTED_BACKENDS', 'build_model', 'build_trt_engine',
    'check_backend_available', 'check_post_processing', 'export_onnx',
    'get_backend_name', 'get_input_hw', 'get_test_cfg', 'load_configs',
    'match_detections', 'ort_detections', 'ort_session', 'EFFICIENT_NMS_MAX_CANDIDATES',
    'TRT_OUTPUT_NAMES', 'EfficientNMSOp', 'End2EndTRT', 'RawOutputs',
    'TRTRunner', 'build_engine', 'check_input_shape', 'export_trt_onnx',
    'OpenVINOWrapper', 'input_shapes_from_cfg', 'onnx2openvino',
    'ov_compile', 'ov_detections', 'ov_run', 'CALIB_DEFAULTS', 'export_int8',
    'get_calib_config', 'get_precision', 'quantize_onnx'
]
