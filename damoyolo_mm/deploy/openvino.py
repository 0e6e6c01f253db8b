"""OpenVINO: end-to-end ONNX -> IR (``end2end.xml`` + ``.bin``) and runner.

MMDeploy 1.3.1's OpenVINO backend was written for OpenVINO <= 2022: its
converter runs the ``mo`` command (Model Optimizer, removed in OpenVINO
2025) and its wrapper uses ``openvino.inference_engine.IECore`` (removed in
2024). The artefacts it produces are simple, though: the end-to-end ONNX of
the ``onnxruntime`` export (DAMO-YOLO's graph has no backend-specific op;
``onnx::NonMaxSuppression`` is an OpenVINO op) converted to an IR pair
``end2end.xml`` / ``end2end.bin`` with the input shape of
``backend_config.model_inputs[0].opt_shapes``. This module produces the same
files with the current API (``openvino.convert_model`` +
``openvino.save_model``, FP32 weights: ``compress_to_fp16=False``; INT8
models keep the precision of their QuantizeLinear/DequantizeLinear nodes);
:mod:`.runtime` runs them with ``openvino.Core``. :func:`damoyolo_mm.deploy.compat.apply`
points MMDeploy's OpenVINO backend manager (``to_backend``,
``build_wrapper``) here, so MMDeploy's task processor (used by
``tools/test_deployed.py``) evaluates OpenVINO models too.
"""
import os
import os.path as osp
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from .runtime import ov_compile, require


def input_shapes_from_cfg(deploy_cfg) -> Optional[Dict[str, Sequence[int]]]:
    """``backend_config.model_inputs[0].opt_shapes`` (MMDeploy's key for
    OpenVINO input shapes) as ``{name: shape}``, or None."""
    backend_cfg = deploy_cfg.get('backend_config', {})
    inputs = backend_cfg.get('model_inputs') or []
    if not inputs:
        return None
    shapes = inputs[0].get('opt_shapes')
    if shapes is None:
        return None
    if not isinstance(shapes, dict):
        names = deploy_cfg['onnx_config'].get('input_names', ['input'])
        shapes = dict(zip(names, shapes))
    return {k: [int(v) for v in s] for k, s in shapes.items()}


def onnx2openvino(onnx_file: str,
                  work_dir: str,
                  input_shapes: Optional[Dict[str, Sequence[int]]] = None,
                  compress_to_fp16: bool = False) -> str:
    """Convert an ONNX file to ``WORK_DIR/<name>.xml`` + ``.bin``.

    Written under temporary names and renamed (``.bin`` first), so an
    interrupted conversion never leaves an ``.xml`` that looks complete.

    Returns:
        str: Path of the ``.xml``.
    """
    ov = require('openvino')
    if not osp.isfile(onnx_file):
        raise FileNotFoundError(f'ONNX file {onnx_file} not found')
    os.makedirs(work_dir, exist_ok=True)
    name = osp.splitext(osp.basename(onnx_file))[0]
    xml = osp.join(work_dir, name + '.xml')
    kwargs = {}
    if input_shapes:
        kwargs['input'] = [(k, list(v)) for k, v in input_shapes.items()]
    model = ov.convert_model(onnx_file, **kwargs)
    tmp_xml = osp.join(work_dir, f'.{name}.tmp{os.getpid()}.xml')
    tmp_bin = osp.splitext(tmp_xml)[0] + '.bin'
    try:
        ov.save_model(model, tmp_xml, compress_to_fp16=compress_to_fp16)
        # the .xml names its .bin by file name only when they share the stem;
        # OpenVINO reads <stem>.bin next to the .xml, so rename both
        os.replace(tmp_bin, osp.splitext(xml)[0] + '.bin')
        os.replace(tmp_xml, xml)
    finally:
        for f in (tmp_xml, tmp_bin):
            if osp.exists(f):
                os.remove(f)
    return xml


class OpenVINOWrapper(torch.nn.Module):
    """MMDeploy backend wrapper over ``openvino.Core`` (OpenVINO >= 2023).

    Replaces ``mmdeploy.backend.openvino.OpenVINOWrapper`` (IECore API):
    same constructor arguments and ``forward(dict) -> dict`` of tensors.
    """

    def __init__(self, ir_model_file: str,
                 output_names: Optional[Sequence[str]] = None,
                 threads: Optional[int] = None, **kwargs):
        super().__init__()
        self.compiled = ov_compile(ir_model_file, threads=threads)
        self.request = self.compiled.create_infer_request()
        names = []
        for port in self.compiled.outputs:
            names.append(sorted(port.get_names())[0])
        self._output_names = list(output_names or names)

    @staticmethod
    def get_backend_file_count() -> int:
        return 1

    @property
    def output_names(self):
        return self._output_names

    @output_names.setter
    def output_names(self, value):
        self._output_names = value

    def output_to_list(self, output_dict):
        return [output_dict[name] for name in self._output_names]

    def forward(self, inputs: Dict[str, torch.Tensor]) -> Dict[str,
                                                             torch.Tensor]:
        feed = {k: v.detach().cpu().contiguous().numpy()
                for k, v in inputs.items()}
        res = self.request.infer(feed)
        out = {}
        for port, value in res.items():
            for name in port.get_names():
                out[name] = torch.from_numpy(np.array(value))
        return out


def patch_mmdeploy_openvino() -> None:
    """Point MMDeploy 1.3.1's OpenVINO backend manager at this module.

    ``OpenVINOManager.to_backend`` (``mo`` command) and ``build_wrapper``
    (``IECore``) are replaced; the other backends are untouched.
    """
    try:
        from mmdeploy.backend.openvino.backend_manager import OpenVINOManager
    except ImportError:  # MMDeploy without the OpenVINO backend module
        return
    if getattr(OpenVINOManager, '_damoyolo_patched', False):
        return

    def build_wrapper(cls, backend_files, device='cpu', input_names=None,
                      output_names=None, deploy_cfg=None, **kwargs):
        return OpenVINOWrapper(backend_files[0], output_names=output_names)

    def to_backend(cls, ir_files, work_dir, deploy_cfg, log_level=None,
                   device='cpu', **kwargs):
        shapes = input_shapes_from_cfg(deploy_cfg)
        return [onnx2openvino(f, work_dir, shapes) for f in ir_files]

    OpenVINOManager.build_wrapper = classmethod(build_wrapper)
    OpenVINOManager.to_backend = classmethod(to_backend)
    OpenVINOManager._damoyolo_patched = True


__all__ = [
    'input_shapes_from_cfg', 'onnx2openvino', 'OpenVINOWrapper',
    'patch_mmdeploy_openvino'
]
