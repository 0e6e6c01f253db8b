"""What the numeric tests share: their thread count and the record of the
errors they measure.

``DAMOYOLO_TEST_THREADS=N`` runs every numeric test with N intra-op threads
(default: each test's own choice, 1 or 2), so that one machine can check
the tolerances against another reduction order. ``DAMOYOLO_TOLERANCE_LOG=
file`` makes :func:`within` append one JSON line per comparison (name,
measured value, tolerance, CPU setting): ``tools/misc/cpu_matrix.py`` runs
the numeric groups under several CPU settings and thread counts and prints
the worst measured value beside each tolerance from these lines.
"""
import json
import os
from typing import Optional

THREADS_ENV = 'DAMOYOLO_TEST_THREADS'
LOG_ENV = 'DAMOYOLO_TOLERANCE_LOG'


def threads(default: int) -> int:
    """Intra-op threads for a numeric test: ``DAMOYOLO_TEST_THREADS`` when
    set, else ``default``."""
    value = os.environ.get(THREADS_ENV)
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f'{THREADS_ENV}={value!r}: expected a positive '
                         'integer (e.g. 1 or 2)')
    return int(value)


def setting() -> str:
    """The CPU setting the process computes with, e.g. ``native/2t``."""
    import torch
    cap = os.environ.get('ATEN_CPU_CAPABILITY', 'native')
    return f'{cap}/{torch.get_num_threads()}t'


def record(name: str, measured: float, tol: float,
           kind: str = 'max') -> None:
    """Append a measurement to ``DAMOYOLO_TOLERANCE_LOG`` if it is set.
    ``kind='max'``: a bound (measured <= tol); ``'min'``: a floor (measured
    >= tol, e.g. the determined share of a detection set)."""
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    line = json.dumps(dict(name=name, measured=float(measured),
                           tol=float(tol), kind=kind, setting=setting()))
    with open(path, 'a') as f:  # one short line: appends do not interleave
        f.write(line + '\n')


def within(name: str, measured: float, tol: float,
           info: Optional[str] = None) -> None:
    """Assert ``measured <= tol`` and record it."""
    record(name, measured, tol)
    assert measured <= tol, f'{name}: {measured:.3g} > tolerance {tol:.3g}' + (
        f' ({info})' if info else '')


def at_least(name: str, measured: float, floor: float,
             info: Optional[str] = None) -> None:
    """Assert ``measured >= floor`` and record it."""
    record(name, measured, floor, kind='min')
    assert measured >= floor, f'{name}: {measured:.3g} < {floor:.3g}' + (
        f' ({info})' if info else '')
