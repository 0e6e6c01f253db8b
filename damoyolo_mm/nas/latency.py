"""Latency prediction from a per-op lookup table (LUT), and the tools to
measure one.

A structure's latency is predicted as the sum of the times of its ops in
deploy form (BN folded into the convs; see
:func:`damoyolo_mm.nas.analysis.structure_ops`): regular convs, depthwise
convs and element-wise ops (ReLU, residual add, average pool). Each op time
comes from a table measured on the target:

* regular convs: per ``(k, s)`` a regular grid over
  ``(C_in, C_out, H_in)``; queries are interpolated trilinearly in
  ``log2`` coordinates on ``log(time)``. Outside the grid the coordinate is
  clamped and the time scaled by the ratio of multiply-accumulates.
* depthwise convs: per ``(k, s)`` a grid over ``(C, H_in)`` (bilinear).
* element-wise ops: time against element count (log-log, linear in the
  count beyond the largest measured size).

Grid points too expensive to measure (above ``max_macs``) are filled at build
time by MAC-scaling the nearest measured point; ``measured`` marks which
points are real measurements. Times are seconds per image (batch 1).
"""
import bisect
import contextlib
import datetime
import json
import math
import os.path as osp
import statistics
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from damoyolo_mm.benchmark.timing import machine_info, median_time
from damoyolo_mm.utils.fileio import atomic_open

LUT_FORMAT = 'damoyolo_mm.nas.latency_lut/1'
DEFAULT_LUT = osp.join(osp.dirname(osp.abspath(__file__)), 'latency_luts',
                       'torch_cpu_t1.json')
ELTWISE_OPS = ('relu', 'add', 'avgpool')


class LatencyLUTError(ValueError):
    """The table cannot answer a query or is malformed."""


# --------------------------------------------------------------------------
# interpolation helpers
# --------------------------------------------------------------------------
def _bracket(axis: Sequence[float], v: float) -> Tuple[int, int, float]:
    """Indices (i0, i1) and weight of i1 for ``v`` on a sorted log axis."""
    if len(axis) == 1 or v <= axis[0]:
        return 0, 0, 0.0
    if v >= axis[-1]:
        n = len(axis) - 1
        return n, n, 0.0
    i1 = bisect.bisect_right(axis, v)
    i0 = i1 - 1
    t = (v - axis[i0]) / (axis[i1] - axis[i0])
    return i0, i1, t


def _clamp(v: float, lo: float, hi: float) -> float:
    return lo if v < lo else hi if v > hi else v


class _ConvTable:
    """One ``(k, s)`` table of regular convs."""

    def __init__(self, k: int, s: int, entry: dict) -> None:
        self.k, self.s = k, s
        self.cin = [int(v) for v in entry['cin']]
        self.cout = [int(v) for v in entry['cout']]
        self.h = [int(v) for v in entry['h']]
        t = np.asarray(entry['time'], dtype=np.float64)
        if t.shape != (len(self.cin), len(self.cout), len(self.h)):
            raise LatencyLUTError(
                f'conv k{k}_s{s}: time has shape {t.shape}, expected '
                f'{(len(self.cin), len(self.cout), len(self.h))}')
        if not np.all(t > 0):
            raise LatencyLUTError(f'conv k{k}_s{s}: times must be > 0')
        self.log_t = np.log(t).tolist()
        self.lcin = [math.log2(v) for v in self.cin]
        self.lcout = [math.log2(v) for v in self.cout]
        self.lh = [math.log2(v) for v in self.h]

    def __call__(self, cin: int, cout: int, h: float) -> float:
        ci = _clamp(cin, self.cin[0], self.cin[-1])
        co = _clamp(cout, self.cout[0], self.cout[-1])
        hh = _clamp(h, self.h[0], self.h[-1])
        a0, a1, ta = _bracket(self.lcin, math.log2(ci))
        b0, b1, tb = _bracket(self.lcout, math.log2(co))
        c0, c1, tc = _bracket(self.lh, math.log2(hh))
        lt = self.log_t
        v = 0.0
        for ia, wa in ((a0, 1 - ta), (a1, ta)):
            if wa == 0.0:
                continue
            row = lt[ia]
            for ib, wb in ((b0, 1 - tb), (b1, tb)):
                if wb == 0.0:
                    continue
                col = row[ib]
                v += wa * wb * ((1 - tc) * col[c0] + tc * col[c1])
        scale = (cin / ci) * (cout / co) * (h / hh) ** 2
        return math.exp(v) * scale


class _DWTable:
    """One ``(k, s)`` table of depthwise convs."""

    def __init__(self, k: int, s: int, entry: dict) -> None:
        self.k, self.s = k, s
        self.c = [int(v) for v in entry['c']]
        self.h = [int(v) for v in entry['h']]
        t = np.asarray(entry['time'], dtype=np.float64)
        if t.shape != (len(self.c), len(self.h)) or not np.all(t > 0):
            raise LatencyLUTError(f'dwconv k{k}_s{s}: bad time table')
        self.log_t = np.log(t).tolist()
        self.lc = [math.log2(v) for v in self.c]
        self.lh = [math.log2(v) for v in self.h]

    def __call__(self, c: int, h: float) -> float:
        cc = _clamp(c, self.c[0], self.c[-1])
        hh = _clamp(h, self.h[0], self.h[-1])
        a0, a1, ta = _bracket(self.lc, math.log2(cc))
        c0, c1, tc = _bracket(self.lh, math.log2(hh))
        lt = self.log_t
        v = ((1 - ta) * ((1 - tc) * lt[a0][c0] + tc * lt[a0][c1]) +
             ta * ((1 - tc) * lt[a1][c0] + tc * lt[a1][c1]))
        return math.exp(v) * (c / cc) * (h / hh) ** 2


class _EltTable:

    def __init__(self, name: str, entry: dict) -> None:
        self.n = [int(v) for v in entry['numel']]
        t = [float(v) for v in entry['time']]
        if len(t) != len(self.n) or min(t) <= 0 or self.n != sorted(self.n):
            raise LatencyLUTError(f'eltwise {name}: bad table')
        self.ln = [math.log(v) for v in self.n]
        self.lt = [math.log(v) for v in t]

    def __call__(self, numel: int) -> float:
        if numel >= self.n[-1]:
            return math.exp(self.lt[-1]) * numel / self.n[-1]
        if numel <= self.n[0]:
            return math.exp(self.lt[0])
        i0, i1, t = _bracket(self.ln, math.log(numel))
        return math.exp((1 - t) * self.lt[i0] + t * self.lt[i1])


class LatencyLUT:
    """A latency table and its predictor.

    Args:
        data: the table dict (see :func:`save` / ``build_latency_lut.py``).
        path: where it was loaded from (for messages).
    """

    def __init__(self, data: dict, path: str = '<dict>') -> None:
        if not isinstance(data, dict) or data.get('format') != LUT_FORMAT:
            raise LatencyLUTError(
                f'{path}: not a latency table of format {LUT_FORMAT!r}')
        for key in ('target', 'unit', 'conv'):
            if key not in data:
                raise LatencyLUTError(f'{path}: missing key {key!r}')
        if data['unit'] != 's':
            raise LatencyLUTError(f'{path}: unit must be "s" (seconds per '
                                  f'image), got {data["unit"]!r}')
        self.data = data
        self.path = path
        self.target = data['target']
        self.scale = float(data.get('scale', 1.0))
        self.impl_scale = {k: float(v) for k, v in
                           data.get('scale_by_impl', {}).items()}
        for v in [self.scale] + list(self.impl_scale.values()):
            if not 0.1 <= v <= 10:
                raise LatencyLUTError(f'{path}: implausible calibration '
                                      f'scale {v}')
        self._conv: Dict[Tuple[int, int], _ConvTable] = {}
        for key, entry in data['conv'].items():
            k, s = _parse_ks(key, path)
            self._conv[(k, s)] = _ConvTable(k, s, entry)
        self._dw: Dict[Tuple[int, int], _DWTable] = {}
        for key, entry in data.get('dwconv', {}).items():
            k, s = _parse_ks(key, path)
            self._dw[(k, s)] = _DWTable(k, s, entry)
        self._elt = {name: _EltTable(name, entry)
                     for name, entry in data.get('eltwise', {}).items()}

    # ------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: Optional[str] = None) -> 'LatencyLUT':
        path = path or DEFAULT_LUT
        if not osp.isfile(path):
            raise FileNotFoundError(f'latency table {path} not found; build '
                                    'one with tools/nas/build_latency_lut.py')
        with open(path, encoding='utf-8') as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as err:
                raise LatencyLUTError(f'{path}: not valid JSON ({err})')
        return cls(data, path)

    def save(self, path: str) -> None:
        save_lut(self.data, path)

    # ---------------------------------------------------------- prediction
    def conv(self, k: int, s: int, cin: int, cout: int, h: float) -> float:
        table = self._conv.get((k, s))
        if table is None:
            raise LatencyLUTError(
                f'{self.path}: no conv table for kernel {k} stride {s} '
                f'(has {sorted(self._conv)})')
        return table(cin, cout, h)

    def dwconv(self, k: int, s: int, c: int, h: float) -> float:
        table = self._dw.get((k, s))
        if table is None:
            raise LatencyLUTError(
                f'{self.path}: no depthwise conv table for kernel {k} stride '
                f'{s} (has {sorted(self._dw)})')
        return table(c, h)

    def eltwise(self, name: str, numel: int) -> float:
        table = self._elt.get(name)
        if table is None:
            return 0.0  # tables without element-wise entries ignore them
        return table(numel)

    def op(self, op: tuple) -> float:
        kind = op[0]
        if kind == 'conv':
            return self.conv(*op[1:])
        if kind == 'dwconv':
            return self.dwconv(*op[1:])
        if kind in ELTWISE_OPS:
            return self.eltwise(kind, op[1])
        raise LatencyLUTError(f'unknown op {op!r}')

    def scale_for(self, block_impl: str = 'res') -> float:
        """Calibration factor of a block implementation (``scale_by_impl``
        entry, else the global ``scale``)."""
        return self.impl_scale.get(block_impl, self.scale)

    def predict_ops(self, ops: Sequence[tuple],
                    block_impl: str = 'res') -> float:
        """Sum of the op times times the calibration scale."""
        return self.scale_for(block_impl) * sum(self.op(o) for o in ops)

    def predict(self, blocks: Sequence[dict], image_size: int = 320,
                block_impl: str = 'res') -> float:
        """Predicted seconds per image of a (search-format) structure."""
        from .analysis import structure_ops
        return self.predict_ops(structure_ops(blocks, image_size, block_impl),
                                block_impl)

    def describe(self) -> str:
        d = self.data
        return (f'{self.path} (target {d["target"]}, '
                f'{d.get("num_threads", "?")} thread(s), '
                f'{d.get("machine", {}).get("processor", "?")})')


def _parse_ks(key: str, path: str) -> Tuple[int, int]:
    try:
        k, s = key.split('_')
        assert k[0] == 'k' and s[0] == 's'
        return int(k[1:]), int(s[1:])
    except (ValueError, AssertionError, IndexError):
        raise LatencyLUTError(f'{path}: bad table key {key!r}, expected '
                              '"k<kernel>_s<stride>"')


def save_lut(data: dict, path: str) -> None:
    """Write a table atomically (compact JSON)."""
    with atomic_open(path, 'w', encoding='utf-8') as f:
        json.dump(data, f, separators=(',', ':'))
        f.write('\n')


# --------------------------------------------------------------------------
# measuring
# --------------------------------------------------------------------------
class BackendUnavailable(RuntimeError):
    """The requested measuring backend cannot run on this machine."""


def _pick_clock(clock: str, num_threads: int) -> str:
    if clock == 'auto':
        return 'cpu' if num_threads == 1 else 'wall'
    if clock not in ('cpu', 'wall'):
        raise ValueError(f"clock must be 'auto', 'cpu' or 'wall', got "
                         f'{clock!r}')
    if clock == 'cpu' and num_threads != 1:
        raise ValueError('the CPU-time clock measures latency only for '
                         'single-threaded runs (num_threads=1)')
    return clock


class TorchCPUBackend:
    """PyTorch eager on CPU, float32, batch 1, inference mode.

    With one thread the process CPU time is measured (``clock='auto'``), so
    other load on the machine does not inflate the table.

    Median of the runs. With ``flush_cache_mb`` a buffer of that size is
    rewritten before every timed run, so an op does not find its input and
    weights in the CPU caches -- as inside a network, where they were
    written by other ops (isolated, cache-warm op timings under-predict a
    whole network by 20-30 % on a typical server CPU).
    """
    name = 'torch-cpu'

    def __init__(self, num_threads: int = 1, min_time: float = 0.05,
                 min_runs: int = 5, max_runs: int = 200,
                 warmup: int = 2, flush_cache_mb: int = 64,
                 clock: str = 'auto') -> None:
        self.num_threads = num_threads
        self.clock = _pick_clock(clock, num_threads)
        self.timing = dict(min_time=min_time, min_runs=min_runs,
                           max_runs=max_runs, warmup=warmup,
                           clock=self.clock)
        self._buf = torch.empty(flush_cache_mb * (1 << 18)) \
            if flush_cache_mb else None

    def _flush(self) -> None:
        self._buf.add_(1.0)

    def time_module(self, module: nn.Module, *shapes: Sequence[int],
                    flush: bool = True) -> float:
        prev = torch.get_num_threads()
        torch.set_num_threads(self.num_threads)
        try:
            module = module.eval()
            inputs = [torch.randn(*s) for s in shapes]
            fl = self._flush if flush and self._buf is not None else None
            with torch.inference_mode():
                return median_time(lambda: module(*inputs), flush=fl,
                                    **self.timing)
        finally:
            torch.set_num_threads(prev)


@contextlib.contextmanager
def _exported(module: nn.Module, shapes: Sequence[Sequence[int]]):
    """``module`` exported to a temporary ONNX file (opset 13) for random
    inputs of ``shapes``; yields (path, {input name: tensor})."""
    from damoyolo_mm.deploy.compat import onnx_export
    inputs = {f'x{i}': torch.randn(*s) for i, s in enumerate(shapes)}
    with tempfile.TemporaryDirectory() as d:
        path = osp.join(d, 'op.onnx')
        onnx_export(module.eval(), tuple(inputs.values()), path,
                    input_names=list(inputs), opset_version=13)
        yield path, inputs


class OnnxRuntimeBackend:
    """ONNX Runtime CPU execution provider (module exported per query)."""
    name = 'onnxruntime-cpu'

    def __init__(self, num_threads: int = 1, min_time: float = 0.05,
                 min_runs: int = 5, max_runs: int = 200,
                 warmup: int = 2, clock: str = 'auto') -> None:
        try:
            import onnxruntime  # noqa: F401
        except ImportError as err:
            raise BackendUnavailable(
                'onnxruntime is not importable '
                f'({err}); install onnxruntime to measure this target')
        self.num_threads = num_threads
        self.clock = _pick_clock(clock, num_threads)
        self.timing = dict(min_time=min_time, min_runs=min_runs,
                           max_runs=max_runs, warmup=warmup,
                           clock=self.clock)

    def time_module(self, module: nn.Module, *shapes: Sequence[int]) -> float:
        from damoyolo_mm.deploy.runtime import ort_session
        with _exported(module, shapes) as (path, feed):
            sess = ort_session(path, threads=self.num_threads)
        feed = {n: t.numpy() for n, t in feed.items()}
        return median_time(lambda: sess.run(None, feed), **self.timing)


class TensorRTBackend:
    """TensorRT on the current CUDA GPU (FP16 by default)."""
    name = 'tensorrt'

    def __init__(self, fp16: bool = True, min_time: float = 0.05,
                 min_runs: int = 10, max_runs: int = 1000,
                 warmup: int = 5, **kwargs) -> None:
        if not torch.cuda.is_available():
            raise BackendUnavailable(
                'TensorRT needs a CUDA GPU and none is available '
                '(torch.cuda.is_available() is False)')
        try:
            import tensorrt  # noqa: F401
        except ImportError as err:
            raise BackendUnavailable(f'tensorrt is not importable ({err})')
        self.fp16 = fp16
        self.timing = dict(min_time=min_time, min_runs=min_runs,
                           max_runs=max_runs, warmup=warmup)

    def time_module(self, module: nn.Module, *shapes: Sequence[int]) -> float:
        from damoyolo_mm.deploy.tensorrt import TRTRunner, build_engine
        with _exported(module, shapes) as (path, feed):
            engine = build_engine(path, path[:-len('.onnx')] + '.engine',
                                  fp16=self.fp16)
            run = TRTRunner(engine).bind(feed)
        return median_time(run, **self.timing)


BACKENDS = {
    'torch-cpu': TorchCPUBackend,
    'onnxruntime-cpu': OnnxRuntimeBackend,
    'tensorrt': TensorRTBackend,
}


def build_backend(target: str, **kwargs):
    if target not in BACKENDS:
        raise ValueError(f'unknown latency target {target!r}; expected one '
                         f'of {sorted(BACKENDS)}')
    return BACKENDS[target](**kwargs)


# --------------------------------------------------------------------------
# op modules (deploy form) and the plain super-net used for validation
# --------------------------------------------------------------------------
class _Relu(nn.Module):

    def forward(self, x):
        return F.relu(x)


class _Add(nn.Module):

    def forward(self, x, y):
        return x + y


class _AvgPool(nn.Module):

    def forward(self, x):
        return F.avg_pool2d(x, 2, 2)


def _conv(cin, cout, k, s, g=1):
    return nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=g, bias=True)


class _PlainRes(nn.Module):
    """One TinyNAS residual block in deploy form (BN folded)."""

    def __init__(self, cin, btn, cout, k, s, k1):
        super().__init__()
        self.conv1 = _conv(cin, btn, k1, 1)
        self.conv2 = _conv(btn, cout, k, s)
        self.pool = s == 2
        self.proj = _conv(cin, cout, 1, 1) if cin != cout else None

    def forward(self, x):
        y = self.conv2(F.relu(self.conv1(x)))
        r = F.avg_pool2d(x, 2, 2) if self.pool else x
        if self.proj is not None:
            r = self.proj(r)
        return F.relu(y + r)


class _PlainMobile(nn.Module):
    """One DAMO-YOLO-Nano inverted residual in deploy form."""

    def __init__(self, cin, mid, cout, s):
        super().__init__()
        from .analysis import MOBILE_DW_KERNEL
        self.pw1 = _conv(cin, mid, 1, 1)
        self.dw = _conv(mid, mid, MOBILE_DW_KERNEL, s, g=mid)
        self.pw2 = _conv(mid, cout, 1, 1)
        self.shortcut = s == 1 and cin == cout

    def forward(self, x):
        y = self.pw2(F.relu(self.dw(F.relu(self.pw1(x)))))
        return x + y if self.shortcut else y


def build_plain_net(blocks: Sequence[dict],
                    block_impl: str = 'res') -> nn.Module:
    """The network whose ops :func:`structure_ops` lists, BN folded."""
    from .analysis import mobile_mid_channels
    layers: List[nn.Module] = []
    for idx, b in enumerate(blocks):
        if b['class'] == 'ConvKXBNRELU':
            layers += [_conv(b['in'], b['out'], b['k'], b['s']), _Relu()]
            continue
        for j in range(b['L']):
            cin = b['in'] if j == 0 else b['out']
            s = b['s'] if j == 0 else 1
            if block_impl == 'mobile':
                layers.append(_PlainMobile(
                    cin, mobile_mid_channels(b['out'], idx), b['out'], s))
            else:
                k1 = 1 if b['class'] == 'SuperResConvK1KX' else b['k']
                layers.append(_PlainRes(cin, b['btn'], b['out'], b['k'], s,
                                        k1))
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------
# building a table
# --------------------------------------------------------------------------
DEFAULT_CHANNELS = (8, 16, 32, 64, 128, 256, 512)
DEFAULT_H = (10, 20, 40, 80, 160, 320)
DEFAULT_NUMEL = (1 << 10, 1 << 13, 1 << 16, 1 << 19, 1 << 22)


def _nearest_fill(time_arr: np.ndarray, measured: np.ndarray,
                  macs: np.ndarray) -> np.ndarray:
    """Fill unmeasured grid points by MAC-scaling the nearest measured one
    (distance in grid-index space)."""
    out = time_arr.copy()
    idx_m = np.argwhere(measured)
    if len(idx_m) == 0:
        raise LatencyLUTError('no grid point could be measured')
    for idx in np.argwhere(~measured):
        d = np.abs(idx_m - idx).sum(axis=1)
        # prefer the largest measured op among the nearest (efficiency of
        # large ops carries over best)
        best = d.min()
        cands = idx_m[d == best]
        src = max(cands, key=lambda c: macs[tuple(c)])
        out[tuple(idx)] = time_arr[tuple(src)] * macs[tuple(idx)] / \
            macs[tuple(src)]
    return out


def build_lut(backend,
              conv_kernels: Sequence[int] = (1, 3),
              strides: Sequence[int] = (1, 2),
              channels: Sequence[int] = DEFAULT_CHANNELS,
              heights: Sequence[int] = DEFAULT_H,
              dw_kernels: Sequence[int] = (5, ),
              dw_channels: Sequence[int] = (16, 32, 64, 128, 256, 512, 1024),
              eltwise_numel: Sequence[int] = DEFAULT_NUMEL,
              max_macs: float = 2e9,
              progress: Optional[Callable[[str], None]] = None) -> dict:
    """Measure a latency table with ``backend`` (see BACKENDS).

    Returns:
        dict: the table, ready for :class:`LatencyLUT` / :func:`save_lut`.
    """
    channels = sorted(channels)
    heights = sorted(heights)
    data = dict(format=LUT_FORMAT, target=backend.name, unit='s', batch=1,
                dtype='float32',
                num_threads=getattr(backend, 'num_threads', None),
                clock=getattr(backend, 'clock', 'wall'),
                machine=machine_info(getattr(backend, 'num_threads', None)),
                created=datetime.datetime.now(
                    datetime.timezone.utc).isoformat(timespec='seconds'),
                max_macs=max_macs, conv={}, dwconv={}, eltwise={})
    n_total = (len(conv_kernels) * len(strides) * len(channels) ** 2 *
               len(heights) + len(dw_kernels) * len(strides) *
               len(dw_channels) * len(heights) +
               len(ELTWISE_OPS) * len(eltwise_numel))
    done = 0

    def tick(msg):
        nonlocal done
        done += 1
        if progress is not None:
            progress(f'[{done}/{n_total}] {msg}')

    for k in conv_kernels:
        for s in strides:
            shape = (len(channels), len(channels), len(heights))
            t = np.zeros(shape)
            measured = np.zeros(shape, dtype=bool)
            macs = np.zeros(shape)
            for a, ci in enumerate(channels):
                for b, co in enumerate(channels):
                    for c, h in enumerate(heights):
                        ho = (h + s - 1) // s
                        macs[a, b, c] = ci * co * k * k * ho * ho
                        if macs[a, b, c] <= max_macs:
                            t[a, b, c] = backend.time_module(
                                _conv(ci, co, k, s), (1, ci, h, h))
                            measured[a, b, c] = True
                        tick(f'conv k{k} s{s} {ci}->{co} @{h}')
            t = _nearest_fill(t, measured, macs)
            data['conv'][f'k{k}_s{s}'] = dict(
                cin=list(channels), cout=list(channels), h=list(heights),
                time=t.tolist(), measured=measured.astype(int).tolist())
    for k in dw_kernels:
        for s in strides:
            t = np.zeros((len(dw_channels), len(heights)))
            for a, ch in enumerate(dw_channels):
                for c, h in enumerate(heights):
                    t[a, c] = backend.time_module(_conv(ch, ch, k, s, g=ch),
                                                  (1, ch, h, h))
                    tick(f'dwconv k{k} s{s} {ch} @{h}')
            data['dwconv'][f'k{k}_s{s}'] = dict(
                c=list(dw_channels), h=list(heights), time=t.tolist())
    mods = dict(relu=(_Relu, 1), add=(_Add, 2), avgpool=(_AvgPool, 1))
    for name in ELTWISE_OPS:
        cls, n_in = mods[name]
        times, numels = [], []
        for n in eltwise_numel:
            # a (1, C, H, H) map with C = 16 * H / 4 -- roughly n elements
            side = max(2, int(round((n / 4) ** (1 / 3))) // 2 * 2)
            c = max(1, n // (side * side))
            numels.append(c * side * side)
            times.append(backend.time_module(cls(),
                                             *[(1, c, side, side)] * n_in))
            tick(f'{name} {numels[-1]}')
        data['eltwise'][name] = dict(numel=numels, time=times)
    return data


def measure_structure(backend, blocks: Sequence[dict], image_size: int = 320,
                      block_impl: str = 'res') -> float:
    """Measured seconds per image of the plain (deploy-form) network."""
    net = build_plain_net(blocks, block_impl)
    return backend.time_module(net, (1, blocks[0]['in'], image_size,
                                     image_size))


def random_structures(n: int, block_class: str = 'SuperResConvK1KX',
                      max_layers: int = 25, steps: int = 60,
                      seed: int = 0) -> List[List[dict]]:
    """Structures sampled by random mutation walks from the DAMO-YOLO
    initial structure (used to calibrate a table on networks other than
    the ones it is validated on)."""
    import random as _random
    from .structure import damoyolo_init_structure
    from .spaces import ResK1KXSpace, ResKXKXSpace
    space_cls = ResKXKXSpace if block_class == 'SuperResConvKXKX' \
        else ResK1KXSpace
    space = space_cls(channel_range=[None, None, [64, 128], None,
                                     [128, 256], [256, 512]])
    enc = space.bind(damoyolo_init_structure(block_class),
                     max_layers=max_layers)
    rng = _random.Random(seed)
    out = []
    for _ in range(n):
        cur = enc
        for _ in range(steps):
            child = space.mutate(cur, rng)
            if space.num_layers(child) <= max_layers:
                cur = child
        out.append(space.decode(cur))
    return out


def calibrate_lut(data: dict, backend, structures: Sequence[Sequence[dict]],
                  image_size: int = 320, block_impl: str = 'res',
                  progress: Optional[Callable[[str], None]] = None) -> dict:
    """Fit the table's calibration factor = median(measured / predicted)
    over ``structures`` (whole networks measured with ``backend``): the
    global ``scale`` for ``block_impl='res'``, a ``scale_by_impl`` entry
    otherwise."""
    data = dict(data)
    if block_impl == 'res':
        data['scale'] = 1.0
    else:
        data['scale_by_impl'] = dict(data.get('scale_by_impl', {}),
                                     **{block_impl: 1.0})
    lut = LatencyLUT(data)
    ratios = []
    for i, blocks in enumerate(structures):
        pred = lut.predict(blocks, image_size, block_impl)
        meas = measure_structure(backend, blocks, image_size, block_impl)
        ratios.append(meas / pred)
        if progress is not None:
            progress(f'calibration net {i + 1}/{len(structures)}: measured '
                     f'{meas * 1e3:.2f} ms, table {pred * 1e3:.2f} ms')
    scale = float(statistics.median(ratios))
    if block_impl == 'res':
        data['scale'] = scale
    else:
        data['scale_by_impl'][block_impl] = scale
    data.setdefault('calibration', {})
    data['calibration'] = dict(data['calibration'], **{block_impl: dict(
        n=len(ratios), ratios=ratios, image_size=image_size)})
    return data


def validate_lut(lut: LatencyLUT, backend, structures: Dict[str, list],
                 image_size: int = 320, tolerance: float = 0.15,
                 block_impl: str = 'res',
                 progress: Optional[Callable[[str], None]] = None
                 ) -> List[dict]:
    """Predicted vs measured latency of whole networks.

    Returns:
        list[dict]: per structure ``name``, ``predicted``, ``measured`` (s),
        ``rel_error`` ((pred - meas) / meas) and ``ok`` (within tolerance).
    """
    results = []
    for name, blocks in structures.items():
        pred = lut.predict(blocks, image_size, block_impl)
        meas = measure_structure(backend, blocks, image_size, block_impl)
        err = (pred - meas) / meas
        results.append(dict(name=name, predicted=pred, measured=meas,
                            rel_error=err, ok=abs(err) <= tolerance))
        if progress is not None:
            progress(f'{name}: predicted {pred * 1e3:.3f} ms, measured '
                     f'{meas * 1e3:.3f} ms, error {err * 100:+.1f}% '
                     f'({"ok" if abs(err) <= tolerance else "FAIL"})')
    return results
