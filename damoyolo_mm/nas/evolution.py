"""Evolutionary search (TinyNAS v1 semantics, without its O(n^2) ranking).

* The population holds at most ``popu_size`` distinct structures, the best
  by score. It starts with the initial structure.
* Every step draws a parent uniformly from the population, applies the
  space's mutations, and evaluates the child analytically (layers, params,
  FLOPs, latency from the table). Children outside any budget are counted
  (the candidate count includes them, as in TinyNAS) but never scored or
  inserted.
* A child already in the population is not inserted again; when the
  population is full a child replaces the worst member if it scores higher.

The whole state (random generator, population, counters) is a plain dict
(:meth:`EvolutionSearch.state_dict`), so a search resumed from a saved state
continues exactly as the uninterrupted one.
"""
import heapq
import math
import random
from typing import Dict, List, NamedTuple, Optional, Tuple

from .budget import Budget, BudgetError
from .spaces import BaseResSpace, Encoded


class Candidate(NamedTuple):
    index: int
    enc: Encoded
    layers: int
    params: float
    flops: float
    latency: float
    score: Optional[float]
    violation: str  # '' when inside every budget


class Population:
    """Distinct structures with their scores; uniform sampling, O(log n)
    eviction of the worst."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f'popu_size must be >= 1, got {size}')
        self.size = size
        self.members: List[Encoded] = []
        self.pos: Dict[Encoded, int] = {}
        self.info: Dict[Encoded, tuple] = {}
        self.heap: List[tuple] = []
        self.seq = 0

    def __len__(self) -> int:
        return len(self.members)

    def __contains__(self, key) -> bool:
        return key in self.pos

    def sample(self, rng: random.Random) -> Encoded:
        return rng.choice(self.members)

    def add(self, key: Encoded, score: float, info: tuple) -> bool:
        if key in self.pos:
            return False
        if len(self.members) >= self.size:
            if score <= self.heap[0][0]:
                return False
            _, _, worst = heapq.heappop(self.heap)
            self._remove(worst)
        self.seq += 1
        heapq.heappush(self.heap, (score, -self.seq, key))
        self.pos[key] = len(self.members)
        self.members.append(key)
        self.info[key] = info
        return True

    def _remove(self, key: Encoded) -> None:
        idx = self.pos.pop(key)
        last = self.members.pop()
        if last != key:
            self.members[idx] = last
            self.pos[last] = idx
        del self.info[key]

    def ranked(self) -> List[Tuple[Encoded, tuple]]:
        """Members sorted by score, best first (ties: older first)."""
        order = sorted(self.heap, key=lambda t: (-t[0], -t[1]))
        return [(k, self.info[k]) for _, _, k in order]

    def state_dict(self) -> dict:
        return dict(size=self.size, members=list(self.members),
                    info=dict(self.info), heap=list(self.heap), seq=self.seq)

    def load_state_dict(self, state: dict) -> None:
        self.size = state['size']
        self.members = list(state['members'])
        self.pos = {k: i for i, k in enumerate(self.members)}
        self.info = dict(state['info'])
        self.heap = list(state['heap'])
        self.seq = state['seq']


class EvolutionSearch:
    """The search loop, independent of files and logging.

    Args:
        space: a bound search space (:meth:`BaseResSpace.bind` called).
        init: the encoded initial structure.
        budget: the budgets.
        score_fn: None to use the space's fast madnas (``stage_weights``
            bound), or a callable ``blocks -> float`` (e.g. the entropy
            score) called on in-budget children only.
        popu_size: population size (TinyNAS DAMO-YOLO: 512).
        seed: seed of the search's random generator.
    """

    def __init__(self, space: BaseResSpace, init: Encoded, budget: Budget,
                 score_fn=None, popu_size: int = 512, seed: int = 0) -> None:
        self.space = space
        self.budget = budget
        self.score_fn = score_fn
        self.rng = random.Random(seed)
        self.count = 0
        self.n_in_budget = 0
        self.population = Population(popu_size)
        self.best: Optional[tuple] = None  # (score, enc, info)
        self.init = init
        first = self.evaluate(init, index=-1)
        if first.violation:
            raise BudgetError(self._init_message(first))
        self._insert(first)

    # -------------------------------------------------------------- core
    def evaluate(self, enc: Encoded, index: int) -> Candidate:
        layers, params, flops, lat, score = self.space.evaluate(enc)
        violation = self.budget.violation(layers, params, flops, lat)
        if violation:
            score = None
        elif self.score_fn is not None:
            score = float(self.score_fn(self.space.decode(enc)))
        return Candidate(index, enc, layers, params, flops, lat, score,
                         violation)

    def _insert(self, cand: Candidate) -> None:
        info = (cand.score, cand.layers, cand.params, cand.flops,
                cand.latency)
        self.population.add(cand.enc, cand.score, info)
        if self.best is None or cand.score > self.best[0]:
            self.best = (cand.score, cand.enc, info)

    def step(self) -> Candidate:
        """Generate, evaluate and (if in budget) insert one child."""
        parent = self.population.sample(self.rng)
        child = self.space.mutate(parent, self.rng)
        cand = self.evaluate(child, self.count)
        self.count += 1
        if not cand.violation:
            self.n_in_budget += 1
            self._insert(cand)
        return cand

    # ------------------------------------------------------- budgets
    def _init_message(self, cand: Candidate) -> str:
        key = cand.violation
        value = dict(layers=cand.layers, params=cand.params,
                     flops=cand.flops, latency=cand.latency)
        minimum = minimum_reachable(self.space, self.init)
        limit = self.budget[key]
        if minimum[key] > limit:
            return (f'budget {key}={limit:g} cannot be met: the minimum '
                    f'reachable {key} in this search space is '
                    f'{minimum[key]:.6g} (smallest channels allowed by the '
                    'channel ranges, L=1 everywhere); raise the budget or '
                    'widen the search space')
        return (f'the initial structure does not meet budget {key}={limit:g} '
                f'(it has {value[key]:.6g}); start from a smaller '
                f'init_structure (the minimum reachable {key} is '
                f'{minimum[key]:.6g})')

    # ------------------------------------------------------ state
    def state_dict(self) -> dict:
        return dict(rng=self.rng.getstate(), count=self.count,
                    n_in_budget=self.n_in_budget,
                    population=self.population.state_dict(), best=self.best)

    def load_state_dict(self, state: dict) -> None:
        self.rng.setstate(state['rng'])
        self.count = state['count']
        self.n_in_budget = state['n_in_budget']
        self.population.load_state_dict(state['population'])
        self.best = state['best']


def minimum_reachable(space: BaseResSpace, init: Encoded) -> Dict[str, float]:
    """Layers / params / FLOPs / latency of the cheapest reachable
    structure (see :meth:`BaseResSpace.minimal`)."""
    enc = space.minimal(init)
    layers, params, flops, lat, _ = space.evaluate(enc)
    return dict(layers=layers, params=params, flops=flops, latency=lat)


def check_feasible(space: BaseResSpace, init: Encoded,
                   budget: Budget) -> Dict[str, float]:
    """Raise :class:`BudgetError` at once if a budget is below the minimum
    reachable value; returns the minimum values."""
    minimum = minimum_reachable(space, init)
    for key in ('layers', 'params', 'flops', 'latency'):
        limit = budget[key]
        if limit is not None and minimum[key] > limit:
            raise BudgetError(
                f'budget {key}={limit:g} cannot be met: the minimum reachable '
                f'{key} in this search space is {minimum[key]:.6g} (smallest '
                'channels allowed by the channel ranges, L=1 everywhere); '
                'raise the budget or widen the search space')
    if not math.isfinite(minimum['latency']) and budget['latency'] is not None:
        raise BudgetError('the latency table cannot predict the minimal '
                          'structure (an op is missing from the table)')
    return minimum
