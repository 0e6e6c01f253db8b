"""Latency runners of exported models (used by :mod:`.latency`).

Every exported model is timed as *network + box decoding*, the part the
official eager model computes, by cutting the end-to-end ONNX at the inputs
of its NonMaxSuppression (decoded boxes and class probabilities): FP32 and
INT8 (QDQ), run by ONNX Runtime and by OpenVINO. The NMS of a model with
random (golden) weights sees tens of thousands of candidates, which says
nothing about a trained model; the end-to-end rows of the tool show it.
"""
import os
import os.path as osp
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from damoyolo_mm.deploy.compat import require
from damoyolo_mm.deploy.quantization import nms_inputs


def cut_at_nms(onnx_file: str, out_file: str) -> str:
    """The sub-graph of an end-to-end ONNX from its input to the inputs of
    its NonMaxSuppression (outputs ``boxes`` (B, N, 4), ``scores``
    (B, C, N)); written to ``out_file``."""
    onnx = require('onnx')
    model = onnx.load(onnx_file)
    outputs = list(nms_inputs(model, onnx_file))
    inputs = [i.name for i in model.graph.input]
    onnx.utils.extract_model(onnx_file, out_file, inputs, outputs,
                             check_model=False)
    return out_file


def engine_runners(models: Dict[str, str],
                   backends: Sequence[str],
                   x: np.ndarray,
                   out_dir: str,
                   threads: int,
                   log: Callable[[str], None] = print
                   ) -> Dict[str, Callable[[], object]]:
    """One callable per (model, backend), each running ``x`` once.

    Args:
        models (dict): label (e.g. ``'FP32'``, ``'INT8'``) -> end-to-end
            ONNX; cut at the NMS first (:func:`cut_at_nms`).
        backends (list[str]): ``'onnxruntime'`` and / or ``'openvino'``.
        x (ndarray): The input (1x3xHxW float32).
        threads (int): Intra-op threads of both runtimes.

    Returns:
        dict: row name -> callable.
    """
    from damoyolo_mm.deploy.runtime import ort_session
    os.makedirs(out_dir, exist_ok=True)
    fns = {}
    x = np.ascontiguousarray(x, dtype=np.float32)
    for label, e2e in models.items():
        stem = osp.splitext(osp.basename(e2e))[0]
        raw = cut_at_nms(e2e, osp.join(out_dir, f'{stem}_{label}_raw.onnx'))
        for backend in backends:
            name = f'ours {_NAMES[backend]} {label} (net + decode)'
            if backend == 'onnxruntime':
                sess = ort_session(raw, threads=threads)
                iname = sess.get_inputs()[0].name
                fns[name] = (lambda s=sess, n=iname: s.run(None, {n: x}))
            elif backend == 'openvino':
                from damoyolo_mm.deploy.openvino import onnx2openvino
                from damoyolo_mm.deploy.runtime import ov_compile
                xml = onnx2openvino(raw, out_dir)
                req = ov_compile(xml, threads=threads).create_infer_request()
                fns[name] = (lambda r=req: r.infer({0: x}))
            else:
                raise ValueError(f'backend {backend!r}: expected onnxruntime '
                                 'or openvino')
            log(f'prepared {name}')
    return fns


def compare_raw_outputs(a: Sequence[np.ndarray],
                        b: Sequence[np.ndarray]) -> Dict[str, float]:
    """Largest |d box| and |d score| of two (boxes, scores) output pairs."""
    return dict(box=float(np.abs(np.asarray(a[0]) - np.asarray(b[0])).max()),
                score=float(
                    np.abs(np.asarray(a[1]) - np.asarray(b[1])).max()))


_NAMES = {'onnxruntime': 'ORT', 'openvino': 'OpenVINO'}


def synthetic_images(n: int, h: int, w: int, seed: int = 0,
                     base: Optional[np.ndarray] = None):
    """``n`` smooth random images (1x3xHxW, integer values 0..255), the
    calibration set of latency-only INT8 models (accuracy is measured with
    tools/deploy.py + tools/test_deployed.py on a real dataset)."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    out = [] if base is None else [np.ascontiguousarray(base, np.float32)]
    while len(out) < n:
        small = torch.rand(1, 3, max(h // 16, 1), max(w // 16, 1),
                           generator=gen) * 255
        img = torch.nn.functional.interpolate(
            small, size=(h, w), mode='bilinear', align_corners=False)
        noise = torch.randn(1, 3, h, w, generator=gen) * 10
        out.append((img + noise).clamp(0, 255).round().numpy())
    return out[:n]


__all__ = [
    'cut_at_nms', 'engine_runners', 'compare_raw_outputs', 'synthetic_images'
]
