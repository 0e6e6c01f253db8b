"""Run an exported model: ONNX Runtime, OpenVINO, TensorRT; numpy in and out.

The one place that opens and runs the files ``tools/deploy.py`` writes
(MMYOLO keeps the same concern in ``easydeploy/model/backendwrapper.py``):

* :func:`ort_session`, :func:`ov_compile`, :func:`ov_run`: the runtime
  objects with this package's settings (ONNX Runtime CPU provider with a
  thread count; OpenVINO with the latency hint and FP32 inference precision,
  so that FP32 models give the numbers of PyTorch / ONNX Runtime on CPUs with
  BF16 units).
* :class:`ExportedModel`: one file of any of the three backends (chosen by
  its suffix: ``.onnx``, ``.xml``, ``.engine``) behind one call,
  ``model(x) -> {output name: array}``, and :meth:`ExportedModel.detections`
  for end-to-end files (NMS in the graph).
* :func:`run_onnx`: an ONNX file on a list of inputs (the quantizer's
  sensitivity analysis).
* :func:`split_detections`: the padded per-image outputs of an end-to-end
  file (``dets`` + ``labels`` of MMDeploy's ONNX, or ``num_dets``,
  ``det_boxes``, ``det_scores``, ``det_classes`` of ``EfficientNMS_TRT``)
  as one dict of ``bboxes`` / ``scores`` / ``labels`` per image.

Users: evaluation (MMDeploy's OpenVINO wrapper, :mod:`.openvino`),
``tools/deploy.py --verify``, the latency benchmarks
(:mod:`damoyolo_mm.benchmark.engines`, :mod:`damoyolo_mm.nas.latency`), the
INT8 quantizer (:mod:`.quantization`) and the predictor
(:mod:`damoyolo_mm.apis.predictor`).

Imports only numpy (and the runtime asked for, when asked): no torch,
mmcv, mmengine or mmdet, so that a deployed model runs in an environment
with numpy, OpenCV and ONNX Runtime or OpenVINO alone. TensorRT runs through
:class:`damoyolo_mm.deploy.tensorrt.TRTRunner` (CUDA torch tensors), which
needs torch and a GPU anyway.
"""
import importlib
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

#: what to install for each backend (shown in error messages)
INSTALL_HINTS: Dict[str, str] = {
    'mmdeploy': 'pip install --no-deps mmdeploy==1.3.1 && '
    'pip install "damoyolo_mm[deploy]"  (onnx onnxruntime prettytable aenum '
    'multiprocess grpcio)',
    'onnx': 'pip install "onnx>=1.16"  (or pip install "damoyolo_mm[deploy]")',
    'onnxruntime': 'pip install "onnxruntime>=1.17"  (or pip install '
    '"damoyolo_mm[deploy]")',
    'openvino': 'pip install "openvino>=2024"  (or pip install '
    '"damoyolo_mm[deploy]")',
    'tensorrt': 'pip install "tensorrt>=10,<11"  (or pip install '
    '"damoyolo_mm[tensorrt]"); it also needs an NVIDIA GPU with a CUDA '
    'driver and a CUDA build of torch',
}

#: file suffix -> backend
BACKEND_OF_SUFFIX = {
    '.onnx': 'onnxruntime',
    '.xml': 'openvino',
    '.engine': 'tensorrt',
}


def require(package: str) -> Any:
    """Import ``package`` or raise ImportError saying what to install."""
    try:
        return importlib.import_module(package)
    except ImportError as e:
        hint = INSTALL_HINTS.get(package, f'pip install {package}')
        raise ImportError(
            f'damoyolo_mm.deploy needs the Python package "{package}", which '
            f'could not be imported ({e}). Install it with: {hint}') from e


def _numpy(x) -> np.ndarray:
    """A contiguous float32 array from a numpy array or a (CPU) tensor."""
    if hasattr(x, 'detach'):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(x, dtype=np.float32)


def ort_session(onnx_file: str, threads: Optional[int] = None):
    """An ONNX Runtime CPU session (MMDeploy's custom ops not needed).

    Args:
        threads (int, optional): intra-op threads (inter-op: 1); all cores
            when None.
    """
    ort = require('onnxruntime')
    if not osp.isfile(onnx_file):
        raise FileNotFoundError(f'ONNX file {onnx_file} not found')
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(
        onnx_file, opts, providers=['CPUExecutionProvider'])


def ov_compile(xml_file: str, threads: Optional[int] = None,
               device: str = 'CPU'):
    """Compile an IR (or ONNX) file for ``device`` with latency hints.

    Args:
        threads (int, optional): ``INFERENCE_NUM_THREADS`` (all cores when
            None).
    """
    ov = require('openvino')
    if not osp.isfile(xml_file):
        raise FileNotFoundError(f'OpenVINO model {xml_file} not found')
    core = ov.Core()
    config = {'PERFORMANCE_HINT': 'LATENCY'}
    if threads:
        config['INFERENCE_NUM_THREADS'] = int(threads)
    # FP32 on CPUs with BF16 units: OpenVINO would otherwise run FP32
    # models in BF16 there (different numbers than PyTorch / ONNX Runtime)
    config['INFERENCE_PRECISION_HINT'] = 'f32'
    return core.compile_model(xml_file, device, config)


def ov_run(compiled, inputs) -> Dict[str, np.ndarray]:
    """Run a compiled model (or an infer request of one, faster when
    called repeatedly) on one input array; outputs by name."""
    req = compiled.create_infer_request() if hasattr(
        compiled, 'create_infer_request') else compiled
    res = req.infer({0: _numpy(inputs)})
    out = {}
    for port, value in res.items():
        names = port.get_names()
        name = sorted(names)[0] if names else port.get_any_name()
        out[name] = np.asarray(value)
    return out


def run_onnx(onnx_file: str, inputs: Sequence[np.ndarray],
             names: Optional[Sequence[str]] = None,
             threads: Optional[int] = None) -> List[tuple]:
    """Run an ONNX file (ONNX Runtime, CPU) on each input; the outputs
    ``names`` (all when None) of each run as a tuple."""
    sess = ort_session(onnx_file, threads)
    iname = sess.get_inputs()[0].name
    names = list(names) if names is not None else None
    return [tuple(sess.run(names, {iname: x})) for x in inputs]


def split_detections(outputs: Dict[str, np.ndarray]) -> List[Dict]:
    """Per-image detections of an end-to-end model's outputs.

    ``dets`` (B, K, 5) + ``labels`` (B, K) (MMDeploy's ONNX, padding rows
    have score 0), or TensorRT's ``num_dets`` (B, 1), ``det_boxes``,
    ``det_scores``, ``det_classes``. Boxes are x1y1x2y2 in network-input
    pixels.

    Returns:
        list[dict]: per image ``bboxes`` (N, 4) float32, ``scores`` (N,)
        float32, ``labels`` (N,) int64.
    """
    res = []
    if 'dets' in outputs and 'labels' in outputs:
        for d, lab in zip(outputs['dets'], outputs['labels']):
            keep = d[:, 4] > 0
            res.append(dict(bboxes=d[keep, :4], scores=d[keep, 4],
                            labels=lab[keep].astype(np.int64)))
        return res
    if 'num_dets' in outputs:
        for n, b, s, c in zip(outputs['num_dets'], outputs['det_boxes'],
                              outputs['det_scores'], outputs['det_classes']):
            n = int(np.asarray(n).reshape(-1)[0])
            res.append(dict(bboxes=np.asarray(b[:n], np.float32),
                            scores=np.asarray(s[:n], np.float32),
                            labels=np.asarray(c[:n]).astype(np.int64)))
        return res
    raise KeyError(f'outputs {sorted(outputs)} are not those of an '
                   'end-to-end model (dets + labels, or TensorRT\'s num_dets '
                   '+ det_boxes + det_scores + det_classes); export with '
                   'tools/deploy.py')


def ort_detections(session, inputs) -> List[Dict]:
    """Run an end-to-end ONNX session (``dets``, ``labels``); the
    detections of each image, padding rows dropped (see
    :func:`split_detections`)."""
    name = session.get_inputs()[0].name
    names = [o.name for o in session.get_outputs()]
    out = session.run(None, {name: _numpy(inputs)})
    return split_detections(dict(zip(names, out)))


def ov_detections(compiled, inputs) -> List[Dict]:
    """Like :func:`ort_detections` for an OpenVINO end-to-end model."""
    return split_detections(ov_run(compiled, inputs))


class ExportedModel:
    """One exported file, any backend: ``model(x)`` -> outputs by name.

    Args:
        model_file (str): ``.onnx`` (ONNX Runtime), ``.xml`` (OpenVINO IR;
            its ``.bin`` beside it) or ``.engine`` (TensorRT 10).
        backend (str, optional): overrides the choice by suffix.
        threads (int, optional): CPU threads (ONNX Runtime / OpenVINO).
        device (str): ``'cpu'`` or ``'cuda:N'`` (TensorRT).

    Attributes:
        backend (str), input_name (str), input_shape (list: ints, or
        None / a name for a dynamic axis), output_names (list[str]).
    """

    def __init__(self, model_file: str, backend: Optional[str] = None,
                 threads: Optional[int] = None, device: str = 'cpu') -> None:
        if backend is None:
            backend = backend_of_file(model_file)
        if not osp.isfile(model_file):
            raise FileNotFoundError(f'model file {model_file} not found')
        self.model_file = model_file
        self.backend = backend
        if backend == 'onnxruntime':
            self._sess = ort_session(model_file, threads)
            inp = self._sess.get_inputs()[0]
            self.input_name = inp.name
            self.input_shape = [d if isinstance(d, int) else None
                                for d in inp.shape]
            self.output_names = [o.name for o in self._sess.get_outputs()]
        elif backend == 'openvino':
            self._compiled = ov_compile(model_file, threads)
            self._req = self._compiled.create_infer_request()
            port = self._compiled.inputs[0]
            self.input_name = port.get_any_name()
            shape = port.get_partial_shape()
            self.input_shape = [d.get_length() if d.is_static else None
                                for d in shape]
            self.output_names = [sorted(p.get_names())[0]
                                 for p in self._compiled.outputs]
        elif backend == 'tensorrt':
            if not str(device).startswith('cuda'):
                raise ValueError(
                    f'{model_file}: a TensorRT engine runs on an NVIDIA GPU; '
                    f'pass a CUDA device (e.g. --device cuda:0), not '
                    f'{device!r}')
            from .tensorrt import TRTRunner  # needs torch + tensorrt + GPU
            self._trt = TRTRunner(model_file, device=device)
            self.input_name = self._trt.input_names[0]
            self.input_shape = list(
                self._trt.engine.get_tensor_shape(self.input_name))
            self.input_shape = [d if d >= 0 else None
                                for d in self.input_shape]
            self.output_names = list(self._trt.output_names)
        else:
            raise ValueError(f'backend {backend!r}: expected one of '
                             f'{sorted(set(BACKEND_OF_SUFFIX.values()))}')

    def __call__(self, x) -> Dict[str, np.ndarray]:
        x = _numpy(x)
        if self.backend == 'onnxruntime':
            out = self._sess.run(None, {self.input_name: x})
            return dict(zip(self.output_names, out))
        if self.backend == 'openvino':
            return ov_run(self._req, x)
        import torch
        run = self._trt.bind(torch.from_numpy(x))
        return {k: v.cpu().numpy() for k, v in run().items()}

    def detections(self, x) -> List[Dict]:
        """Per-image detections of an end-to-end model (input pixels)."""
        return split_detections(self(x))


def backend_of_file(model_file: str) -> str:
    """The backend that runs ``model_file``, from its suffix."""
    suffix = osp.splitext(model_file)[1].lower()
    if suffix not in BACKEND_OF_SUFFIX:
        raise ValueError(
            f'{model_file}: unknown model file kind {suffix or "(none)"!r}; '
            'expected end2end.onnx (ONNX Runtime), end2end.xml (OpenVINO) or '
            'end2end.engine (TensorRT), as written by tools/deploy.py')
    return BACKEND_OF_SUFFIX[suffix]


__all__ = [
    'INSTALL_HINTS', 'BACKEND_OF_SUFFIX', 'require', 'ort_session',
    'ov_compile', 'ov_run', 'run_onnx', 'split_detections', 'ort_detections',
    'ov_detections', 'ExportedModel', 'backend_of_file'
]
