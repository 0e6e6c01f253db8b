"""Search budgets: parsing (with units), plausibility and feasibility.

Units of plain numbers: ``layers`` (count), ``params`` (count), ``flops``
(count, TinyNAS counting: multiply-accumulates + BN + ReLU ops) and
``latency`` (seconds per image on the latency table's target). Strings with
a unit are accepted too: ``'4.0G'`` / ``'3.5M'`` for params and FLOPs,
``'80ms'`` / ``'8e-5s'`` / ``'150us'`` for latency.

A plain number whose magnitude is implausible for its unit -- compared with
the initial structure, e.g. ``flops=4.0`` (GFLOPs meant) or ``latency=80``
(milliseconds meant) -- raises :class:`BudgetError` naming the likely unit.
"""
import math
import re
from typing import Dict, Optional

BUDGET_KEYS = ('layers', 'params', 'flops', 'latency')
#: a budget further than this factor from the initial structure's value is
#: treated as a unit mistake
PLAUSIBLE_FACTOR = 1000.0

_SI = {'': 1.0, 'k': 1e3, 'K': 1e3, 'M': 1e6, 'G': 1e9, 'T': 1e12}
_TIME = {'s': 1.0, 'ms': 1e-3, 'us': 1e-6, 'µs': 1e-6, 'ns': 1e-9}


class BudgetError(ValueError):
    """A budget is malformed, implausible or cannot be met."""


def _parse_value(key: str, value):
    if value is None:
        return None
    if isinstance(value, bool):
        raise BudgetError(f'budgets.{key}: expected a number, got {value!r}')
    if isinstance(value, (int, float)):
        v = float(value)
    elif isinstance(value, str):
        m = re.fullmatch(r'\s*([0-9.eE+-]+)\s*([a-zA-Zµ]*)\s*', value)
        if not m:
            raise BudgetError(f'budgets.{key}: cannot parse {value!r}')
        try:
            num = float(m.group(1))
        except ValueError:
            raise BudgetError(f'budgets.{key}: cannot parse {value!r}')
        unit = m.group(2)
        if key == 'latency':
            if unit not in _TIME:
                raise BudgetError(
                    f'budgets.latency: unknown time unit {unit!r} in '
                    f'{value!r}; use s, ms, us or ns')
            v = num * _TIME[unit]
        elif key in ('params', 'flops'):
            if unit not in _SI:
                raise BudgetError(
                    f'budgets.{key}: unknown unit {unit!r} in {value!r}; use '
                    'K, M, G or T (or a plain count)')
            v = num * _SI[unit]
        else:
            if unit:
                raise BudgetError(f'budgets.{key}: expected a plain count, '
                                  f'got {value!r}')
            v = num
    else:
        raise BudgetError(f'budgets.{key}: expected a number or a string '
                          f'with a unit, got {type(value).__name__}')
    if not math.isfinite(v) or v <= 0:
        raise BudgetError(f'budgets.{key}: must be a positive finite value, '
                          f'got {value!r}')
    if key == 'layers':
        if v != int(v):
            raise BudgetError(f'budgets.layers: must be an integer, got '
                              f'{value!r}')
        v = int(v)
    return v


def _unit_hint(key: str, value: float, reference: float) -> str:
    ratio = value / reference
    if key == 'latency':
        for unit, scale in (('ms', 1e-3), ('us', 1e-6)):
            if 0.1 <= value * scale / reference <= 10:
                return (f'it looks like {unit}; the unit is seconds per '
                        f'image, e.g. {value * scale:.3g} or '
                        f'"{value:g}{unit}"')
        return 'the unit is seconds per image on the latency table target'
    for unit, scale in (('G', 1e9), ('M', 1e6), ('K', 1e3)):
        if 0.1 <= value * scale / reference <= 10:
            return (f'it looks like {unit}{key.upper() if key == "flops" else ""}'
                    f'; give a plain count, e.g. {value * scale:.4g} or '
                    f'"{value:g}{unit}"')
    if ratio > 1:
        return 'it is far larger than the initial structure'
    return 'it is far smaller than the initial structure'


class Budget:
    """Parsed search budgets.

    Args:
        layers, params, flops, latency: limits (None = unconstrained); see
            the module doc for units.
        stages: most stride-2 blocks (TinyNAS ``budget_stages``).
    """

    def __init__(self, layers=None, params=None, flops=None, latency=None,
                 stages: int = 5) -> None:
        self.limits: Dict[str, Optional[float]] = {
            'layers': _parse_value('layers', layers),
            'params': _parse_value('params', params),
            'flops': _parse_value('flops', flops),
            'latency': _parse_value('latency', latency),
        }
        if not isinstance(stages, int) or stages < 1:
            raise BudgetError(f'budgets.stages must be a positive int, got '
                              f'{stages!r}')
        self.stages = stages

    @classmethod
    def from_cfg(cls, cfg: Optional[dict]) -> 'Budget':
        cfg = dict(cfg or {})
        unknown = [k for k in cfg if k not in BUDGET_KEYS + ('stages', )]
        if unknown:
            raise BudgetError(
                f'budgets: unknown key(s) {unknown}; allowed '
                f'{list(BUDGET_KEYS) + ["stages"]}')
        return cls(**cfg)

    def __getitem__(self, key: str):
        return self.limits[key]

    def check_plausible(self, init_metrics: Dict[str, float]) -> None:
        """Reject limits whose magnitude is far from the initial
        structure's (a unit mistake)."""
        for key in ('params', 'flops', 'latency'):
            v = self.limits[key]
            ref = init_metrics.get(key)
            if v is None or not ref or not math.isfinite(ref):
                continue
            if not (1 / PLAUSIBLE_FACTOR <= v / ref <= PLAUSIBLE_FACTOR):
                raise BudgetError(
                    f'budgets.{key}={v:g} is implausible: the initial '
                    f'structure has {key}={ref:.4g}; '
                    f'{_unit_hint(key, v, ref)}')

    def violation(self, layers, params, flops, latency) -> str:
        """The first violated budget name, or '' when all are met."""
        lim = self.limits
        if lim['layers'] is not None and layers > lim['layers']:
            return 'layers'
        if lim['params'] is not None and params > lim['params']:
            return 'params'
        if lim['flops'] is not None and flops > lim['flops']:
            return 'flops'
        if lim['latency'] is not None and not latency <= lim['latency']:
            return 'latency'
        return ''

    def as_dict(self) -> dict:
        return dict(self.limits, stages=self.stages)
