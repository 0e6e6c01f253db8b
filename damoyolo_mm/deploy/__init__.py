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

Public names are imported from the submodule that owns them on first use:
:mod:`.runtime` (run an exported file) and :mod:`.meta` (read
``deploy_meta.json``) need numpy and the runtime alone; where MMDeploy is
not installed, importing this package imports nothing else (no torch).
"""
from typing import Dict

from .._installed import installed
from .._lazy import lazy_attributes

#: public name -> submodule that owns it (imported on first use, so that
#: ``damoyolo_mm.deploy.runtime`` needs numpy alone)
_OWNERS: Dict[str, str] = {}
for _module, _names in {
        'compat': ('INSTALL_HINTS', 'apply', 'check_tensorrt', 'onnx_export',
                   'require'),
        'runtime': ('BACKEND_OF_SUFFIX', 'ExportedModel', 'backend_of_file',
                    'ort_detections', 'ort_session', 'ov_compile',
                    'ov_detections', 'ov_run', 'run_onnx',
                    'split_detections'),
        'export': ('SUPPORTED_BACKENDS', 'build_model', 'build_trt_engine',
                   'check_backend_available', 'check_post_processing',
                   'export_onnx', 'get_backend_name', 'get_input_hw',
                   'get_test_cfg', 'load_configs', 'match_detections'),
        'openvino': ('OpenVINOWrapper', 'input_shapes_from_cfg',
                     'onnx2openvino'),
        'quantization': ('CALIB_DEFAULTS', 'export_int8', 'get_calib_config',
                         'get_precision', 'quantize_onnx'),
        'tensorrt': ('EFFICIENT_NMS_MAX_CANDIDATES', 'TRT_OUTPUT_NAMES',
                     'EfficientNMSOp', 'End2EndTRT', 'RawOutputs',
                     'TRTRunner', 'build_engine', 'check_input_shape',
                     'export_trt_onnx'),
        'meta': ('META_FILE', 'build_deploy_meta', 'load_deploy_meta',
                 'write_deploy_meta'),
}.items():
    for _name in _names:
        _OWNERS[_name] = _module


__getattr__, __dir__ = lazy_attributes(__name__, _OWNERS)


if installed('mmdeploy'):
    from .compat import apply
    apply()
    from . import rewriters  # noqa: F401,E402

__all__ = sorted(_OWNERS)
