"""Machine description and timing loops shared by every benchmark."""
import contextlib
import os
import platform
import statistics
import time
from collections import defaultdict
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch


def cpu_name() -> str:
    """CPU model from ``/proc/cpuinfo`` (else what ``platform`` knows)."""
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or 'unknown'


def load_average() -> Optional[float]:
    """1-minute load average (None where the OS has none)."""
    if hasattr(os, 'getloadavg'):
        return round(os.getloadavg()[0], 2)
    return None


def machine_info(num_threads: Optional[int] = None) -> Dict[str, object]:
    """Platform, CPU model, cores, torch threads, GPU, load, versions.

    Args:
        num_threads: Threads the measurement uses (default: torch's).
    """
    info = dict(
        platform=platform.platform(),
        python=platform.python_version(),
        torch=torch.__version__,
        cpu=cpu_name(),
        cpu_count=os.cpu_count(),
        torch_threads=num_threads or torch.get_num_threads(),
        omp_num_threads=os.environ.get('OMP_NUM_THREADS'),
        gpu=torch.cuda.get_device_name(0)
        if torch.cuda.is_available() else 'none')
    if hasattr(os, 'getloadavg'):
        info['loadavg'] = ' '.join(f'{v:.2f}' for v in os.getloadavg())
    try:
        import onnxruntime
        info['onnxruntime'] = onnxruntime.__version__
    except ImportError:
        pass
    return info


def format_machine(info: Dict[str, object]) -> str:
    """One line ``key=value, ...`` of :func:`machine_info`."""
    return ', '.join(f'{k}={v}' for k, v in info.items())


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
    times: Dict[str, List[float]] = {name: [] for name in fns}
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


def median_time(run: Callable[[], None], min_time: float, min_runs: int,
                max_runs: int, warmup: int,
                flush: Optional[Callable[[], None]] = None,
                clock: str = 'wall') -> float:
    """Median seconds of ``run``: at least ``min_runs`` runs and
    ``min_time`` seconds, at most ``max_runs`` runs. ``clock='cpu'`` uses
    the process CPU time, which a busy machine does not inflate (exact for
    single-threaded runs only); ``'wall'`` the wall clock. ``flush`` runs
    untimed before every run."""
    now = time.process_time if clock == 'cpu' else time.perf_counter
    for _ in range(warmup):
        run()
    times = []
    start = time.perf_counter()
    while len(times) < max_runs:
        if flush is not None:
            flush()
        t0 = now()
        run()
        times.append(now() - t0)
        if len(times) >= min_runs and time.perf_counter() - start >= min_time:
            break
    return statistics.median(times)


class PartClock:
    """Wall time per named part of an iteration; medians over iterations.

    Args:
        parts: The parts every iteration reports (0 when not timed).
    """

    def __init__(self, parts: Sequence[str]) -> None:
        self.parts = tuple(parts)
        self.current: Dict[str, float] = defaultdict(float)
        self.history: Dict[str, List[float]] = defaultdict(list)

    @contextlib.contextmanager
    def part(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.current[name] += time.perf_counter() - start

    def wrap(self, fn: Callable, name: str) -> Callable:
        """``fn`` whose calls are added to part ``name``."""

        def timed(*args, **kwargs):
            with self.part(name):
                return fn(*args, **kwargs)

        return timed

    def end_iter(self, record: bool) -> None:
        if record:
            for name in self.parts:
                self.history[name].append(self.current.get(name, 0.) * 1e3)
        self.current = defaultdict(float)

    def summary(self) -> Dict[str, float]:
        """Median ms per part and of the per-iteration ``total``."""
        out = {
            name: statistics.median(values)
            for name, values in self.history.items() if values
        }
        n = len(self.history[self.parts[0]]) if self.parts else 0
        totals = [sum(self.history[p][i] for p in self.parts)
                  for i in range(n)]
        out['total'] = statistics.median(totals) if totals else float('nan')
        return out


class CpuPartClock:
    """Exclusive process CPU seconds per named part (robust to other load
    on the machine; a part called inside another counts for itself only).
    """

    def __init__(self) -> None:
        self.total: Dict[str, float] = defaultdict(float)
        self._stack: List[float] = []

    def wrap(self, fn: Callable, name: str) -> Callable:
        """``fn`` whose calls are added to part ``name``."""

        def timed(*args, **kwargs):
            self._stack.append(0.)
            start = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.process_time() - start
                self.total[name] += spent - self._stack.pop()
                if self._stack:
                    self._stack[-1] += spent

        return timed
