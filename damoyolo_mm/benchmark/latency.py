"""Batch-1 latency of our fused detector (PyTorch, ONNX Runtime, OpenVINO,
TensorRT), optionally against the official implementation on the same
weights.

* ``pytorch``: both models in their fused eager form (ours:
  ``switch_to_deploy()``, channels-last, and an NCHW copy; official:
  ``RepConv.switch_to_deploy`` + ``fuse_model``, its ``tools/eval.py --fuse``
  path), network + box decoding, no NMS (the official NMS needs
  torchvision). Ours with NMS is listed too.
* ``onnxruntime``: the official ONNX written by the official
  ``tools/converter.py`` against our ONNX of the same outputs (decoded boxes
  + scores) and our end-to-end ONNX (NMS in the graph).
* ``openvino``: our end-to-end export cut at the NMS (network + decode,
  :mod:`.engines`) on OpenVINO, FP32 and (with ``int8``) INT8, against the
  official fused eager model.
* ``all``: PyTorch NCHW and channels-last, ONNX Runtime and OpenVINO in FP32
  and INT8, all against the official fused eager model in one loop.
* ``tensorrt``: our FP16 engine (needs an NVIDIA GPU and TensorRT 10).

INT8 is the QDQ ``end2end.onnx`` of ``tools/deploy.py`` given as
``int8_onnx`` (partial quantization), else a full INT8 quantization of our
export calibrated on synthetic images (latency only).
"""
import copy
import os
import os.path as osp
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .official_code import (build_official_fused, export_official_onnx,
                            load_official_state_dict)
from .timing import machine_info, time_round_robin

#: the ``backend`` values of :func:`benchmark_latency`
BACKENDS = ('pytorch', 'onnxruntime', 'openvino', 'tensorrt', 'all')
#: the official row the PyTorch / OpenVINO / all rows are compared with
OFFICIAL_EAGER = 'official fused (net + decode)'


def build_ours_fused(config: str, checkpoint: Optional[str],
                     official_ckpt: Optional[str]):
    """Our detector in deploy form + its config; weights from our
    ``checkpoint`` or, without one, converted from ``official_ckpt``."""
    from mmdet.registry import MODELS
    from mmengine.config import Config

    from damoyolo_mm.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    if not osp.isfile(config):
        raise FileNotFoundError(f'config {config} not found')
    cfg = Config.fromfile(config)
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        from mmengine.runner import load_checkpoint
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    else:
        from damoyolo_mm.converters import convert_official_state_dict
        sd = convert_official_state_dict(
            load_official_state_dict(official_ckpt), model.state_dict())
        model.load_state_dict(sd, strict=True)
    model.eval()
    model.switch_to_deploy()
    return model.eval(), cfg


def test_size(cfg, override: Optional[Sequence[int]] = None
              ) -> Tuple[int, int]:
    """(h, w) to time at: ``override`` or the config's test size."""
    if override:
        return int(override[0]), int(override[1])
    scale = cfg.get('img_scale', (640, 640))
    return int(scale[0]), int(scale[1])


def benchmark_latency(config: str,
                      checkpoint: Optional[str] = None,
                      backend: str = 'pytorch',
                      official_ckpt: Optional[str] = None,
                      official_root: Optional[str] = None,
                      official_config: Optional[str] = None,
                      deploy_cfg: Optional[str] = None,
                      input_size: Optional[Sequence[int]] = None,
                      threads: int = 2,
                      warmup: int = 5,
                      iters: int = 50,
                      work_dir: Optional[str] = None,
                      nms_row: bool = True,
                      int8: bool = False,
                      int8_onnx: Optional[str] = None,
                      log: Callable[[str], None] = print) -> dict:
    """Time the models of ``backend`` round robin (see the module doc).

    ``int8`` adds the INT8 rows to ``openvino`` (``all`` always has them);
    ``int8_onnx`` is the QDQ end-to-end ONNX to time as INT8 (default: a
    full INT8 quantization of our export, calibrated on synthetic images).

    Returns:
        dict: ``machine``, ``input_hw``, ``backend``, ``results`` (per row:
        ``median_ms``, ``p90_ms``, ``min_ms``, ``iters``), ``ratios`` (ours /
        official medians) and ``notes`` (output agreement).
    """
    if backend not in BACKENDS:
        raise ValueError(f'backend {backend!r}: expected one of {BACKENDS}')
    if int8_onnx is not None and not osp.isfile(int8_onnx):
        raise FileNotFoundError(f'INT8 ONNX {int8_onnx} not found (write it '
                                'with tools/deploy.py and an *-int8 deploy '
                                'config)')
    torch.set_num_threads(threads)
    out_dir = work_dir or tempfile.mkdtemp(prefix='damoyolo_bench_')
    os.makedirs(out_dir, exist_ok=True)
    if backend != 'pytorch':
        from damoyolo_mm.deploy import compat
        compat.require('onnx')
        if backend == 'tensorrt':
            compat.check_tensorrt(fp16=True)
        else:
            compat.require('onnxruntime')
        if backend in ('openvino', 'all'):
            compat.require('openvino')

    model, cfg = build_ours_fused(config, checkpoint, official_ckpt)
    h, w = test_size(cfg, input_size)
    from damoyolo_mm.deploy import check_input_shape
    check_input_shape(h, w)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (1, 3, h, w), generator=gen).float()

    official = None
    if official_root:
        official = build_official_fused(official_root, official_config,
                                        official_ckpt)

    fns: Dict[str, Callable[[], object]] = {}
    pairs: List[Tuple[str, str]] = []  # (ours, official) rows to compare
    notes: List[str] = []
    with torch.no_grad():
        ours_raw = model.bbox_head.predict_raw(model.extract_feat(x))
        if official is not None:
            off_raw = official(x)
            d_s = (ours_raw[0] - off_raw[0]).abs().max().item()
            d_b = (ours_raw[1] - off_raw[1]).abs().max().item()
            notes.append(f'ours vs official outputs on the timing input: '
                         f'max |d score| {d_s:.2e}, max |d box| {d_b:.2e} px')

    if official is not None and backend in ('pytorch', 'openvino', 'all'):
        fns[OFFICIAL_EAGER] = _no_grad(lambda: official(x))
    if backend in ('pytorch', 'all'):
        _pytorch_rows(fns, pairs, notes, model, x, official is not None)
    if backend in ('openvino', 'all'):
        e2e = {'FP32': _export_e2e('openvino', 'fp32', model, config, x,
                                   out_dir, log, deploy_cfg)}
        if int8 or int8_onnx or backend == 'all':
            e2e['INT8'] = int8_onnx or _int8_e2e(model, config, x, out_dir,
                                                 log)
        from .engines import engine_runners
        engines = ['openvino'] if backend == 'openvino' else [
            'onnxruntime', 'openvino']
        rows = engine_runners(e2e, engines, x.numpy(), out_dir, threads, log)
        fns.update(rows)
        if official is not None:
            pairs += [(r, OFFICIAL_EAGER) for r in rows]
    if backend == 'pytorch':
        if nms_row:
            metas = [dict(img_shape=(h, w))]
            fns['ours fused + NMS (test_cfg)'] = _no_grad(
                lambda: model.bbox_head.predict_by_feat(
                    *model.bbox_head(model.extract_feat(x)),
                    batch_img_metas=metas))
    elif backend in ('onnxruntime', 'tensorrt'):
        _deploy_rows(fns, pairs, notes, model, config, x, backend,
                     deploy_cfg, out_dir, threads, official_root,
                     official_config, official_ckpt, log)

    log(f'timing: {warmup} warm-up + {iters} runs each, '
        f'round robin, batch 1, {h}x{w}')
    results = time_round_robin(fns, warmup, iters)
    ratios = {
        f'{ours} / {off}':
        results[ours]['median_ms'] / results[off]['median_ms']
        for ours, off in pairs
    }
    return dict(machine=machine_info(threads), input_hw=[h, w],
                backend=backend, results=results, ratios=ratios, notes=notes)


def _no_grad(fn: Callable[[], object]) -> Callable[[], object]:

    def run():
        with torch.no_grad():
            return fn()

    return run


def _raw(model, x):
    """Decoded (scores, boxes) of ``model`` on ``x``, no NMS."""
    with torch.no_grad():
        return model.bbox_head.predict_raw(model.extract_feat(x))


def _pytorch_rows(fns, pairs, notes, model, x, with_official) -> None:
    """Fused eager rows: ``model`` as ``switch_to_deploy()`` left it
    (channels-last weights, ``infer_memory_format``) and an NCHW copy."""
    nchw = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    for name, m in (('ours fused NCHW (net + decode)', nchw),
                    ('ours fused (net + decode)', model)):
        fns[name] = (lambda m=m: _raw(m, x))
        if with_official:
            pairs.append((name, OFFICIAL_EAGER))
    notes.append('channels-last vs NCHW outputs: max |d| ' + ', '.join(
        f'{a.sub(b).abs().max().item():.1e}'
        for a, b in zip(_raw(model, x), _raw(nchw, x))))


def _export_e2e(backend, precision, model, config, x, out_dir, log,
                deploy_cfg=None) -> str:
    """Our end-to-end ONNX with ``deploy_cfg`` or else the shipped deploy
    config of ``backend`` / ``precision`` (:func:`default_deploy_config`)."""
    import damoyolo_mm.deploy as dp
    from damoyolo_mm.deploy.defaults import default_deploy_config
    h, w = x.shape[-2:]
    deploy_cfg = deploy_cfg or default_deploy_config(backend, h, w, config,
                                                     precision)
    log(f'exporting the end-to-end model with {deploy_cfg}')
    # a copy: MMDeploy's export leaves the traced model patched, a second
    # export of the same object fails
    return dp.export_onnx(deploy_cfg, config, None,
                          osp.join(out_dir, f'ours_e2e_{precision}'),
                          inputs=x, model=copy.deepcopy(model), log=log)


def _int8_e2e(model, config, x, out_dir, log) -> str:
    """Full INT8 of our export (``keep_float=0``), calibrated on synthetic
    images: for latency only (accuracy: tools/deploy.py + tools/
    test_deployed.py on a real dataset)."""
    import damoyolo_mm.deploy as dp
    from .engines import synthetic_images
    h, w = x.shape[-2:]
    fp32 = _export_e2e('onnxruntime', 'int8', model, config, x, out_dir, log)
    calib = dict(dp.CALIB_DEFAULTS, num_images=8, sensitivity_images=1,
                 keep_float=0)
    calib['op_types'] = tuple(calib['op_types'])
    out = osp.join(out_dir, 'ours_e2e_int8', 'end2end_int8.onnx')
    dp.quantize_onnx(fp32, out, synthetic_images(8, h, w, base=x.numpy()),
                     calib, log=log)
    return out


def _deploy_rows(fns, pairs, notes, model, config, x, backend, deploy_cfg,
                 out_dir, threads, official_root, official_config,
                 official_ckpt, log) -> None:
    """Rows of the ONNX Runtime / TensorRT benchmark."""
    import damoyolo_mm.deploy as dp
    from damoyolo_mm.deploy.defaults import default_deploy_config
    h, w = x.shape[-2:]
    deploy_cfg = deploy_cfg or default_deploy_config(backend, h, w, config)
    raw_onnx = osp.join(out_dir, 'ours_raw.onnx')
    log(f'exporting {raw_onnx} (decoded boxes + scores, opset 11)')
    dp.onnx_export(dp.RawOutputs(model).eval(), (x, ), raw_onnx,
                   input_names=['images'], output_names=['boxes', 'scores'],
                   opset_version=11)
    log(f'exporting the end-to-end model with {deploy_cfg}')
    e2e = dp.export_onnx(deploy_cfg, config, None,
                         osp.join(out_dir, 'ours_e2e'), inputs=x,
                         model=model, log=log)
    if backend == 'tensorrt':
        engine = dp.build_trt_engine(
            dp.load_configs(deploy_cfg, config)[0], e2e,
            osp.join(out_dir, 'ours_e2e'), log=log)
        runner = dp.TRTRunner(engine)
        xc = x.cuda()
        fns['ours TensorRT end2end'] = lambda: runner(xc)
        return
    s_raw = dp.ort_session(raw_onnx, threads=threads)
    s_e2e = dp.ort_session(e2e, threads=threads)
    feed = x.numpy()
    fns['ours ORT (net + decode)'] = lambda: s_raw.run(None, {'images': feed})
    fns['ours ORT end2end (+ NMS)'] = lambda: s_e2e.run(
        None, {s_e2e.get_inputs()[0].name: feed})
    if not official_root:
        return
    if h != w:
        raise ValueError('the official converter exports square inputs '
                         f'only, got {h}x{w}')
    off_onnx = export_official_onnx(official_root, official_config,
                                    official_ckpt, h, out_dir)
    s_off = dp.ort_session(off_onnx, threads=threads)
    name = s_off.get_inputs()[0].name
    fns['official ORT (net + decode)'] = lambda: s_off.run(None, {name: feed})
    pairs.append(('ours ORT (net + decode)', 'official ORT (net + decode)'))
    o1 = s_raw.run(None, {'images': feed})
    o2 = s_off.run(None, {name: feed})
    notes.append('ours vs official ONNX outputs: max |d box| '
                 f'{np.abs(o1[0] - o2[1]).max():.2e} px, max |d score| '
                 f'{np.abs(o1[1] - o2[0]).max():.2e}')
