"""Batch-1 latency of DAMO-YOLO: fused PyTorch, ONNX Runtime or TensorRT.

Reports median and 90th percentile latency (ms) at the model's test size,
with the machine (platform, CPU model, thread count, GPU) named. With
``--official-root`` the official DAMO-YOLO implementation is built on the
same weights and timed in the same loop (round robin, so that load changes
on a shared machine hit both alike), and the ratio ours / official printed:

* ``pytorch``: both models in their fused eager form (ours:
  ``switch_to_deploy()``; official: ``RepConv.switch_to_deploy`` +
  ``fuse_model``, its ``tools/eval.py --fuse`` path), network + box decoding,
  no NMS (the official NMS needs torchvision). Ours with NMS is listed too.
* ``onnxruntime``: the official ONNX written by the official
  ``tools/converter.py`` (driven in-process; its model-info step, which times
  500 forward passes, is skipped) against our ONNX of the same outputs
  (decoded boxes + scores) and our end-to-end ONNX (NMS in the graph).
* ``tensorrt``: our FP16 engine (needs an NVIDIA GPU and TensorRT 10).
* ``openvino``: our end-to-end export cut at the NMS (network + decode) on
  OpenVINO, FP32 and (with ``--int8``) INT8; ``all``: PyTorch NCHW and
  channels-last, ONNX Runtime and OpenVINO in FP32 and INT8, all against
  the official eager model in one loop. INT8 is the QDQ ``end2end.onnx`` of
  ``tools/deploy.py`` given by ``--int8-onnx`` (partial quantization), else
  a full INT8 quantization calibrated on synthetic images (latency only).

The official code imports torchvision, loguru, thop and easydict at import
time; none is needed on the inference path, so in-memory stand-ins are
installed in ``sys.modules`` for the benchmark only (they raise if a code
path that really needs them is reached).

Example:
    python tools/benchmark_latency.py configs/damoyolo_t_coco.py \\
        --official-ckpt T_ckpt_fp16.pth --backend pytorch --threads 2 \\
        --official-root ../damoyolo_official \\
        --official-config configs/damoyolo_tinynasL20_T.py
"""
import argparse
import contextlib
import importlib
import json
import os
import os.path as osp
import platform
import shutil
import sys
import tempfile
import time
import types
from typing import Callable, Dict, List, Optional, Tuple

HERE = osp.dirname(osp.abspath(__file__))
if osp.dirname(HERE) not in sys.path:  # run from a source checkout
    sys.path.insert(0, osp.dirname(HERE))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Batch-1 latency (median, p90) of fused DAMO-YOLO on '
        'PyTorch / ONNX Runtime / TensorRT, optionally against the official '
        'implementation on the same weights')
    parser.add_argument('config', help='model config')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='our checkpoint (mmdet layout); default: '
                        '--official-ckpt converted in memory')
    parser.add_argument('--backend', default='pytorch',
                        choices=['pytorch', 'onnxruntime', 'openvino', 'tensorrt', 'all'])
    parser.add_argument('--int8', action='store_true',
                        help='openvino: also time INT8 (always with all)')
    parser.add_argument('--int8-onnx', default=None,
                        help='INT8 end2end.onnx (QDQ) written by '
                        'tools/deploy.py with an *-int8 deploy config; '
                        'default: full INT8 of the export, calibrated on '
                        'synthetic images')
    parser.add_argument('--official-ckpt', default=None,
                        help='official-layout checkpoint ({"model": ...}); '
                        'loaded by the official model and converted for ours')
    parser.add_argument('--official-root', default=None,
                        help='official DAMO-YOLO source tree: also time the '
                        'official implementation and print ours/official')
    parser.add_argument('--official-config', default=None,
                        help='official config, relative to --official-root '
                        '(e.g. configs/damoyolo_tinynasL20_T.py)')
    parser.add_argument('--deploy-cfg', default=None,
                        help='deploy config for the end-to-end ONNX / engine '
                        '(default: the static one for the test size)')
    parser.add_argument('--input-size', type=int, nargs=2, default=None,
                        metavar=('H', 'W'),
                        help='input size (default: the config test size)')
    parser.add_argument('--threads', type=int, default=2,
                        help='torch / ONNX Runtime intra-op threads '
                        '(default: %(default)s)')
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--iters', type=int, default=50,
                        help='timed runs per model (default: %(default)s)')
    parser.add_argument('--work-dir', default=None,
                        help='where exported ONNX / engines go (default: a '
                        'temporary folder)')
    parser.add_argument('--no-nms-row', action='store_true',
                        help='do not time our model with NMS')
    parser.add_argument('--json', default=None,
                        help='also write the results to this JSON file')
    args = parser.parse_args(argv)
    if args.official_root and not args.official_config:
        parser.error('--official-root needs --official-config')
    if args.official_root and not args.official_ckpt:
        parser.error('--official-root needs --official-ckpt (the official '
                     'checkpoint; ours is converted from it unless a '
                     'checkpoint is given)')
    if args.checkpoint is None and args.official_ckpt is None:
        parser.error('give a checkpoint or --official-ckpt')
    if args.iters < 1 or args.warmup < 0:
        parser.error('--iters must be >= 1 and --warmup >= 0')
    return args


# ----------------------------------------------------------------------
# machine
# ----------------------------------------------------------------------
def machine_info(threads: int) -> Dict[str, str]:
    """Platform, CPU model, cores, threads used, GPU, load average."""
    cpu = platform.processor() or 'unknown'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    gpu = 'none'
    if torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(0)
    info = dict(
        platform=platform.platform(),
        python=platform.python_version(),
        torch=torch.__version__,
        cpu=cpu,
        cpu_count=str(os.cpu_count()),
        threads=str(threads),
        gpu=gpu)
    if hasattr(os, 'getloadavg'):
        info['loadavg'] = ' '.join(f'{v:.2f}' for v in os.getloadavg())
    try:
        import onnxruntime
        info['onnxruntime'] = onnxruntime.__version__
    except ImportError:
        pass
    return info


# ----------------------------------------------------------------------
# official implementation (stand-ins for its import-time dependencies)
# ----------------------------------------------------------------------
class _Unavailable:
    """Callable placeholder that raises when the official code needs it."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __call__(self, *args, **kwargs):
        raise RuntimeError(
            f'{self.what} is a stand-in installed by benchmark_latency.py; '
            'this code path of the official implementation needs the real '
            'package')

    def __getattr__(self, name):
        return _Unavailable(f'{self.what}.{name}')


class _Logger:
    """loguru.logger stand-in: prints nothing, ``catch`` re-raises."""

    def catch(self, func=None, **kwargs):
        if func is None:
            return lambda f: f
        return func

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


class _EasyDict(dict):
    """easydict.EasyDict stand-in: attribute access, nested conversion."""

    def __init__(self, d=None, **kwargs):
        super().__init__()
        d = dict(d or {}, **kwargs)
        for k, v in d.items():
            setattr(self, k, v)
        for k in self.__class__.__dict__:
            if not (k.startswith('__') and k.endswith('__')) and k not in (
                    'update', 'pop'):
                setattr(self, k, getattr(self, k))

    def __setattr__(self, name, value):
        if isinstance(value, (list, tuple)):
            value = type(value)(self.__class__(x) if isinstance(x, dict) else
                                x for x in value)
        elif isinstance(value, dict) and not isinstance(value, _EasyDict):
            value = self.__class__(value)
        super().__setattr__(name, value)
        super().__setitem__(name, value)

    __setitem__ = __setattr__

    def update(self, e=None, **f):
        d = e or dict()
        d.update(f)
        for k in d:
            setattr(self, k, d[k])

    def pop(self, k, *args):
        if hasattr(self, k):
            delattr(self, k)
        return super().pop(k, *args)


def install_official_stubs() -> List[str]:
    """Put stand-ins for torchvision / loguru / thop / easydict in
    ``sys.modules`` where the real package is missing; returns their names.
    """
    installed = []

    def missing(name):
        if name in sys.modules:
            return False
        return importlib.util.find_spec(name) is None

    if missing('torchvision'):
        tv = types.ModuleType('torchvision')
        tv.__doc__ = 'stand-in (benchmark_latency.py)'
        tv.__version__ = '0.0.0+stub'
        tv.ops = types.ModuleType('torchvision.ops')
        tv.ops.batched_nms = _Unavailable('torchvision.ops.batched_nms')
        tv.ops.nms = _Unavailable('torchvision.ops.nms')
        tv.ops.box_iou = _Unavailable('torchvision.ops.box_iou')
        tv.transforms = types.ModuleType('torchvision.transforms')
        tv.transforms.functional = types.ModuleType(
            'torchvision.transforms.functional')
        tv.transforms.functional.normalize = _Unavailable(
            'torchvision.transforms.functional.normalize')
        for name, mod in (('torchvision', tv), ('torchvision.ops', tv.ops),
                          ('torchvision.transforms', tv.transforms),
                          ('torchvision.transforms.functional',
                           tv.transforms.functional)):
            sys.modules[name] = mod
        installed.append('torchvision')
    if missing('loguru'):
        lg = types.ModuleType('loguru')
        lg.logger = _Logger()
        sys.modules['loguru'] = lg
        installed.append('loguru')
    if missing('thop'):
        th = types.ModuleType('thop')
        th.profile = _Unavailable('thop.profile')
        th.clever_format = _Unavailable('thop.clever_format')
        sys.modules['thop'] = th
        installed.append('thop')
    if missing('easydict'):
        ed = types.ModuleType('easydict')
        ed.EasyDict = _EasyDict
        sys.modules['easydict'] = ed
        installed.append('easydict')
    return installed


@contextlib.contextmanager
def official_env(official_root: str):
    """Run official code: stand-ins, ``damo`` package, a scratch cwd.

    ``import damo.<sub>`` loads the official modules without running
    ``damo/__init__.py`` (which imports the trainer and the datasets).
    Official configs read their structure files relative to the cwd and the
    official converter writes its ONNX into the cwd, so the cwd is a
    temporary folder with a ``damo`` link; the source tree stays untouched.
    On exit the cwd, ``sys.path``, ``sys.argv`` and ``sys.modules`` are
    restored (stand-ins and official modules removed) so that nothing leaks
    into the rest of the process; objects built inside keep working.
    """
    root = osp.abspath(official_root)
    if not osp.isdir(osp.join(root, 'damo')):
        raise FileNotFoundError(f'--official-root {root} has no damo/ folder')
    old_cwd, old_path, old_argv = os.getcwd(), list(sys.path), sys.argv
    before = set(sys.modules)
    stubs = install_official_stubs()
    saved_damo = {k: v for k, v in sys.modules.items()
                  if k == 'damo' or k.startswith('damo.')}
    for k in saved_damo:
        del sys.modules[k]
    pkg = types.ModuleType('damo')
    pkg.__path__ = [osp.join(root, 'damo')]
    sys.modules['damo'] = pkg
    sys.path.append(root)
    try:
        with tempfile.TemporaryDirectory(prefix='damo_official_') as tmp:
            os.symlink(osp.join(root, 'damo'), osp.join(tmp, 'damo'))
            os.chdir(tmp)
            try:
                yield tmp
            finally:
                os.chdir(old_cwd)
    finally:
        sys.path[:] = old_path
        sys.argv = old_argv
        for name in list(sys.modules):
            if name in before:
                continue
            mod = sys.modules[name]
            path = getattr(mod, '__file__', None) or ''
            if (name == 'damo' or name.startswith('damo.')
                    or name.split('.')[0] in stubs
                    or osp.abspath(path).startswith(root + os.sep)):
                del sys.modules[name]
        sys.modules.update(saved_damo)


def load_official_sd(official_ckpt: str) -> Dict[str, torch.Tensor]:
    ckpt = torch.load(official_ckpt, map_location='cpu', weights_only=True)
    sd = ckpt['model'] if 'model' in ckpt else ckpt
    return {
        k.replace('module.', ''): v.float() if v.is_floating_point() else v
        for k, v in sd.items()
    }


def build_official_fused(official_root: str, official_config: str,
                         official_ckpt: str) -> torch.nn.Module:
    """Official model, weights loaded, RepConv re-parameterised and conv+BN
    folded (``tools/eval.py --fuse``), NMS off."""
    cfg_path = osp.join(osp.abspath(official_root), official_config)
    if not osp.isfile(cfg_path):
        raise FileNotFoundError(f'official config {cfg_path} not found')
    with official_env(official_root):
        from damo.config.base import parse_config
        config = parse_config(cfg_path)
        from damo.detectors.detector import build_local_model
        model = build_local_model(config, 'cpu')
        model.eval()
        model.load_state_dict(load_official_sd(official_ckpt), strict=True)
        from damo.base_models.core.ops import RepConv
        from damo.utils.model_utils import fuse_model
        for layer in model.modules():
            if isinstance(layer, RepConv):
                layer.switch_to_deploy()
        model = fuse_model(model)
        model.head.nms = False
    return model.eval()


def export_official_onnx(official_root: str, official_config: str,
                         official_ckpt: str, img_size: int,
                         out_dir: str) -> str:
    """Run the official ``tools/converter.py`` (default ONNX mode, opset 11,
    batch 1) in-process; returns the written ONNX path.

    Its ``get_model_info`` (FLOPs via thop and 500 timed forward passes) is
    replaced by a no-op; ``torch.onnx._export`` (gone in torch 2.13) by the
    TorchScript exporter.
    """
    conv_path = osp.join(osp.abspath(official_root), 'tools', 'converter.py')
    cfg_path = osp.join(osp.abspath(official_root), official_config)
    name = osp.basename(official_config).replace('.py', '.onnx')
    argv = [
        'converter.py', '-f', cfg_path, '-c', osp.abspath(official_ckpt),
        '--batch_size', '1', '--img_size',
        str(img_size), '--device', 'cpu'
    ]
    had_export = hasattr(torch.onnx, '_export')
    with official_env(official_root) as tmp:
        spec = importlib.util.spec_from_file_location(
            'damo_official_converter', conv_path)
        converter = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(converter)
        converter.get_model_info = lambda model, tsize: 'model info skipped'
        try:
            if not had_export:
                torch.onnx._export = lambda *a, **k: torch.onnx.export(
                    *a, dynamo=False, **k)
            sys.argv = argv
            converter.main()
        finally:
            if not had_export:
                del torch.onnx._export
        src = osp.join(tmp, name)
        if not osp.isfile(src):
            raise RuntimeError(f'the official converter wrote no {name}')
        os.makedirs(out_dir, exist_ok=True)
        dst = osp.join(out_dir, 'official_' + name)
        shutil.copyfile(src, dst)
    return dst


# ----------------------------------------------------------------------
# ours
# ----------------------------------------------------------------------
def build_ours_fused(config: str, checkpoint: Optional[str],
                     official_ckpt: Optional[str]):
    """Our detector in deploy form + its config."""
    from mmengine.config import Config
    from mmdet.registry import MODELS
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
        from damoyolo_mm.models.detectors.convert import \
            convert_official_state_dict
        sd = convert_official_state_dict(
            load_official_sd(official_ckpt), model.state_dict())
        model.load_state_dict(sd, strict=True)
    model.eval()
    model.switch_to_deploy()
    return model.eval(), cfg


def test_size(cfg, override=None) -> Tuple[int, int]:
    if override:
        return int(override[0]), int(override[1])
    scale = cfg.get('img_scale', (640, 640))
    return int(scale[0]), int(scale[1])


# ----------------------------------------------------------------------
# timing
# ----------------------------------------------------------------------
def time_round_robin(fns: Dict[str, Callable[[], object]], warmup: int,
                     iters: int) -> Dict[str, Dict[str, float]]:
    """Time every callable ``iters`` times, interleaved; ms statistics.

    The order of the callables rotates every round, so that no model always
    runs right after the same other one (a fixed order biased a 2-core
    machine by up to 20 %).
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    names = list(fns)
    times = {name: [] for name in fns}
    for i in range(iters):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            fn = fns[name]
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1000.)
    return {
        name: dict(
            median_ms=float(np.median(t)),
            p90_ms=float(np.percentile(t, 90)),
            min_ms=float(np.min(t)),
            iters=len(t)) for name, t in times.items()
    }


def ort_session(path: str, threads: int):
    from damoyolo_mm.deploy import ort_session as _ort
    return _ort(path, threads=threads)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out_dir = args.work_dir or tempfile.mkdtemp(prefix='damoyolo_bench_')
    os.makedirs(out_dir, exist_ok=True)
    log = lambda m: print(m, flush=True)  # noqa: E731

    if args.backend != 'pytorch':
        from damoyolo_mm.deploy import compat
        compat.require('onnx')
        if args.backend == 'tensorrt':
            compat.check_tensorrt(fp16=True)
        else:
            compat.require('onnxruntime')
        if args.backend in ('openvino', 'all'):
            compat.require('openvino')

    model, cfg = build_ours_fused(args.config, args.checkpoint,
                                  args.official_ckpt)
    h, w = test_size(cfg, args.input_size)
    from damoyolo_mm.deploy import check_input_shape
    check_input_shape(h, w)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (1, 3, h, w), generator=gen).float()

    official = None
    if args.official_root:
        official = build_official_fused(args.official_root,
                                        args.official_config,
                                        args.official_ckpt)

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

    if official is not None and args.backend in ('pytorch', 'openvino', 'all'):

        def official_fn():
            with torch.no_grad():
                return official(x)

        fns['official fused (net + decode)'] = official_fn
    if args.backend in ('pytorch', 'all'):
        # switch_to_deploy() leaves the weights channels-last
        # (infer_memory_format): "ours fused"; an NCHW copy for comparison
        import copy
        nchw = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
        for name, m in (('ours fused NCHW (net + decode)', nchw),
                        ('ours fused (net + decode)', model)):
            fns[name] = (lambda m=m: _raw(m, x))
            if official is not None:
                pairs.append((name, 'official fused (net + decode)'))
        notes.append('channels-last vs NCHW outputs: max |d| ' + ', '.join(
            f'{a.sub(b).abs().max().item():.1e}'
            for a, b in zip(_raw(model, x), _raw(nchw, x))))
    if args.backend in ('openvino', 'all'):
        import damoyolo_mm.deploy.benchmark as db
        e2e = {'FP32': _export_e2e(args, 'openvino', model, x, h, w, cfg,
                                    out_dir, 'fp32', log)}
        if args.int8 or args.int8_onnx or args.backend == 'all':
            e2e['INT8'] = args.int8_onnx or _int8_e2e(
                args, model, x, h, w, cfg, out_dir, log)
        backends = ['openvino'] if args.backend == 'openvino' else [
            'onnxruntime', 'openvino']
        rows = db.engine_runners(e2e, backends, x.numpy(), out_dir,
                                 args.threads, log)
        fns.update(rows)
        if official is not None:
            pairs += [(r, 'official fused (net + decode)') for r in rows]
    if args.backend == 'pytorch':
        if not args.no_nms_row:
            metas = [dict(img_shape=(h, w))]

            def ours_nms_fn():
                with torch.no_grad():
                    return model.bbox_head.predict_by_feat(
                        *model.bbox_head(model.extract_feat(x)),
                        batch_img_metas=metas)

            fns['ours fused + NMS (test_cfg)'] = ours_nms_fn
    elif args.backend in ('onnxruntime', 'tensorrt'):
        import damoyolo_mm.deploy as dp
        deploy_cfg = args.deploy_cfg or _default_deploy_cfg(
            args.backend, h, w, cfg)
        raw_onnx = osp.join(out_dir, 'ours_raw.onnx')
        log(f'exporting {raw_onnx} (decoded boxes + scores, opset 11)')
        dp.onnx_export(
            dp.RawOutputs(model).eval(), (x, ),
            raw_onnx,
            input_names=['images'],
            output_names=['boxes', 'scores'],
            opset_version=11)
        log(f'exporting the end-to-end model with {deploy_cfg}')
        e2e = dp.export_onnx(
            deploy_cfg, args.config, None, osp.join(out_dir, 'ours_e2e'),
            inputs=x, model=model, log=log)
        if args.backend == 'onnxruntime':
            s_raw = ort_session(raw_onnx, args.threads)
            s_e2e = ort_session(e2e, args.threads)
            feed = x.numpy()
            fns['ours ORT (net + decode)'] = lambda: s_raw.run(
                None, {'images': feed})
            fns['ours ORT end2end (+ NMS)'] = lambda: s_e2e.run(
                None, {s_e2e.get_inputs()[0].name: feed})
            if args.official_root:
                if h != w:
                    raise ValueError('the official converter exports square '
                                     f'inputs only, got {h}x{w}')
                off_onnx = export_official_onnx(
                    args.official_root, args.official_config,
                    args.official_ckpt, h, out_dir)
                s_off = ort_session(off_onnx, args.threads)
                name = s_off.get_inputs()[0].name
                fns['official ORT (net + decode)'] = lambda: s_off.run(
                    None, {name: feed})
                pairs.append(('ours ORT (net + decode)',
                              'official ORT (net + decode)'))
                o1 = s_raw.run(None, {'images': feed})
                o2 = s_off.run(None, {name: feed})
                notes.append(
                    'ours vs official ONNX outputs: max |d box| '
                    f'{np.abs(o1[0] - o2[1]).max():.2e} px, max |d score| '
                    f'{np.abs(o1[1] - o2[0]).max():.2e}')
        else:  # tensorrt
            engine = dp.build_trt_engine(
                dp.load_configs(deploy_cfg, args.config)[0], e2e,
                osp.join(out_dir, 'ours_e2e'), log=log)
            runner = dp.TRTRunner(engine)
            xc = x.cuda()
            fns['ours TensorRT end2end'] = lambda: runner(xc)

    log(f'timing: {args.warmup} warm-up + {args.iters} runs each, '
        f'round robin, batch 1, {h}x{w}')
    results = time_round_robin(fns, args.warmup, args.iters)
    info = machine_info(args.threads)
    log('machine: ' + ', '.join(f'{k}={v}' for k, v in info.items()))
    log(f'{"model":34s} {"median ms":>10s} {"p90 ms":>10s} {"min ms":>10s}')
    for name, r in results.items():
        log(f'{name:34s} {r["median_ms"]:10.2f} {r["p90_ms"]:10.2f} '
            f'{r["min_ms"]:10.2f}')
    ratios = {}
    for ours, off in pairs:
        ratio = results[ours]['median_ms'] / results[off]['median_ms']
        ratios[f'{ours} / {off}'] = ratio
        log(f'ratio ours/official (median): {ratio:.3f}  [{ours} vs {off}]')
    for note in notes:
        log(note)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(
                dict(machine=info, input_hw=[h, w], backend=args.backend,
                     results=results, ratios=ratios, notes=notes),
                f,
                indent=2)
    return dict(machine=info, results=results, ratios=ratios, notes=notes)


def _raw(model, x):
    with torch.no_grad():
        return model.bbox_head.predict_raw(model.extract_feat(x))


def _export_e2e(args, backend, model, x, h, w, cfg, out_dir, precision,
                log) -> str:
    import damoyolo_mm.deploy as dp
    deploy_cfg = _default_deploy_cfg(backend, h, w, cfg, precision)
    log(f'exporting the end-to-end model with {deploy_cfg}')
    import copy
    # a copy: MMDeploy's export leaves the traced model patched, a second
    # export of the same object fails
    return dp.export_onnx(deploy_cfg, args.config, None,
                          osp.join(out_dir, f'ours_e2e_{precision}'),
                          inputs=x, model=copy.deepcopy(model), log=log)


def _int8_e2e(args, model, x, h, w, cfg, out_dir, log) -> str:
    """Full INT8 of our export (keep_float 0), calibrated on synthetic
    images: for latency only."""
    import damoyolo_mm.deploy as dp
    from damoyolo_mm.deploy.benchmark import synthetic_images
    fp32 = _export_e2e(args, 'onnxruntime', model, x, h, w, cfg, out_dir,
                       'int8', log)
    calib = dict(dp.CALIB_DEFAULTS, num_images=8, sensitivity_images=1,
                 keep_float=0)
    calib['op_types'] = tuple(calib['op_types'])
    out = osp.join(out_dir, 'ours_e2e_int8', 'end2end_int8.onnx')
    dp.quantize_onnx(fp32, out, synthetic_images(8, h, w, base=x.numpy()),
                     calib, log=log)
    return out


def _default_deploy_cfg(backend: str, h: int, w: int, cfg,
                        precision: str = 'fp32') -> str:
    root = osp.join(osp.dirname(HERE), 'configs', 'deploy')
    thr = cfg.model.get('test_cfg', {}).get('score_thr', 0.05)
    nano = abs(float(thr) - 0.03) < 1e-9
    if backend in ('onnxruntime', 'openvino'):
        kind = backend + ('-int8' if precision == 'int8' else '')
        if (h, w) == (640, 640) and not nano:
            return osp.join(root, f'detection_{kind}_static-640x640.py')
        if (h, w) == (416, 416) and nano:
            return osp.join(root, f'detection_{kind}_static-416x416_nano.py')
        if backend == 'openvino' or precision == 'int8':
            raise ValueError(f'no static {kind} deploy config for {h}x{w}; '
                             'give one with --deploy-cfg')
        return osp.join(root, 'detection_onnxruntime_dynamic' +
                        ('_nano' if nano else '') + '.py')
    return osp.join(
        root, 'detection_tensorrt-fp16_static-' +
        ('416x416_nano' if nano else '640x640') + '.py')


if __name__ == '__main__':
    try:
        main()
    except (ImportError, FileNotFoundError, ValueError) as e:
        print(f'tools/benchmark_latency.py: error: {e}', file=sys.stderr)
        sys.exit(2)
