"""Search space: mutation parity with TinyNAS, budgets, bad input."""
import hashlib
import math
import random

import pytest

from damoyolo_mm.nas import (Budget, BudgetError, EvolutionSearch,
                             NanoMobileSpace, ResK1KXSpace, ResKXKXSpace,
                             SpaceConfigError, StructureError, count,
                             damoyolo_init_structure, madnas_score,
                             minimum_reachable)
from damoyolo_mm.nas.latency import LatencyLUT

V1_RANGES = [None, None, [64, 128], None, [128, 256], [256, 512]]
# TinyNAS v1 (space_K1KX + search.get_new_random_structure_info), budget
# layers 20, random.seed(2024), chained walk from the DAMO-YOLO initial
# structure: the first children and a digest of the first 3000.
REF_FIRST = [
    '32,3|48,32,1,3|96,48,1,3|96,96,1,3|192,144,1,3|384,192,1,3',
    '32,3|48,32,1,3|96,48,2,3|96,96,1,3|192,144,1,3|384,96,1,3',
    '32,3|48,32,1,3|96,32,2,3|96,96,1,3|192,144,1,3|384,96,2,3',
    '32,3|48,32,1,3|96,32,2,3|96,96,1,3|128,144,2,3|384,96,2,3',
]
REF_SHA1_3000 = '11ff686d2aa65978675c0e00f4115fcf07ba943f'
REF_LAST = '8,3|64,16,1,3|128,64,2,3|256,64,1,3|256,24,1,3|320,112,1,3'


def _space(cls=ResK1KXSpace, layers=20, **kw):
    sp = cls(channel_range=V1_RANGES, **kw)
    block = 'SuperResConvKXKX' if cls is ResKXKXSpace else \
        'SuperResConvK1KX'
    init = sp.bind(damoyolo_init_structure(block), max_layers=layers,
                   stage_weights=(0, 0, 1, 1, 16))
    return sp, init


def test_mutation_reproduces_tinynas_sequence():
    sp, init = _space()
    rng = random.Random(2024)
    cur, keys = init, []
    for _ in range(3000):
        cur = sp.mutate(cur, rng)
        keys.append(sp.key_str(cur))
    assert keys[:4] == REF_FIRST
    assert keys[-1] == REF_LAST
    assert hashlib.sha1('\n'.join(keys).encode()).hexdigest() == \
        REF_SHA1_3000


def test_mutation_rules():
    sp, init = _space(layers=20)
    assert sp.max_L == 2  # 20 // 2 // 4
    rng = random.Random(0)
    cur = init
    for _ in range(5000):
        child = sp.mutate(cur, rng)
        assert child[0][0] <= 32  # stem cap
        for i, (out, btn, L, k) in enumerate(child):
            assert out % 8 == 0 and out >= 8 and k == 3
            if i == 0:
                continue
            assert child[i - 1][0] <= out or sp.key_str(child)  # out >= in
            assert 1 <= L <= (2 if i == 1 else sp.max_L)
            lo_hi = V1_RANGES[i]
            if lo_hi is not None:
                assert lo_hi[0] <= out <= lo_hi[1]
        if sp.num_layers(child) <= 20:
            cur = child


@pytest.mark.parametrize('cls,layers', [(ResK1KXSpace, 20),
                                        (ResKXKXSpace, 35),
                                        (NanoMobileSpace, 20)])
def test_fast_evaluation_equals_reference_counting(cls, layers):
    lut = LatencyLUT.load()
    sp = cls(channel_range=V1_RANGES)
    init = sp.bind(damoyolo_init_structure(sp.block_class),
                   max_layers=layers, lut=lut,
                   stage_weights=(0, 0, 1, 1, 16))
    rng = random.Random(1)
    cur = init
    for _ in range(60):
        cur = sp.mutate(cur, rng)
        blocks = sp.decode(cur)
        layers_, params, flops, lat, score = sp.evaluate(cur)
        c = count(blocks, 320, block_impl=sp.block_impl)
        assert (layers_, params, flops) == (c['layers'], c['params'],
                                            c['flops'])
        assert score == pytest.approx(
            madnas_score(blocks, block_impl=sp.block_impl), rel=1e-12)
        assert lat == pytest.approx(lut.predict(blocks, 320, sp.block_impl),
                                    rel=1e-12)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_every_emitted_candidate_meets_every_budget(seed):
    """Property test: random budgets, many mutations; whatever the search
    reports in budget (and whatever stays in the population) meets every
    budget when recounted from scratch."""
    lut = LatencyLUT.load()
    r = random.Random(seed)
    sp = ResK1KXSpace(channel_range=V1_RANGES)
    init = sp.bind(damoyolo_init_structure(), max_layers=r.choice([15, 20,
                                                                   25]),
                   lut=lut, stage_weights=(0, 0, 1, 1, 16))
    _, p0, f0, l0, _ = sp.evaluate(init)
    budget = Budget(layers=sp.max_layers, params=p0 * r.uniform(1.2, 2.5),
                    flops=f0 * r.uniform(1.2, 2.5),
                    latency=l0 * r.uniform(1.2, 2.5))
    search = EvolutionSearch(sp, init, budget, popu_size=64, seed=seed)
    n_in = n_out = 0
    for _ in range(3000):
        cand = search.step()
        blocks = sp.decode(cand.enc)
        c = count(blocks, 320)
        lat = lut.predict(blocks, 320)
        ok = (c['layers'] <= budget['layers'] and
              c['params'] <= budget['params'] and
              c['flops'] <= budget['flops'] and lat <= budget['latency'])
        assert ok == (cand.violation == ''), (cand, c, lat)
        n_in += ok
        n_out += not ok
    assert n_in > 100 and n_out > 100  # both sides exercised
    for key, info in search.population.ranked():
        blocks = sp.decode(key)
        c = count(blocks, 320)
        assert c['layers'] <= budget['layers']
        assert c['params'] <= budget['params']
        assert c['flops'] <= budget['flops']
        assert lut.predict(blocks, 320) <= budget['latency']
        assert info[0] == pytest.approx(madnas_score(blocks), rel=1e-12)


def test_infeasible_budget_reports_minimum():
    sp, init = _space()
    minimum = minimum_reachable(sp, init)
    assert minimum['layers'] == 11
    assert minimum['flops'] == pytest.approx(2.51942e8, rel=1e-5)
    # no structure the mutations reach is cheaper than the reported minimum
    rng, cur, lowest = random.Random(5), init, math.inf
    for _ in range(3000):
        cur = sp.mutate(cur, rng)
        lowest = min(lowest, sp.evaluate(cur)[2])
    assert minimum['flops'] <= lowest < 2 * minimum['flops']
    from damoyolo_mm.nas.evolution import check_feasible
    with pytest.raises(BudgetError, match=r'flops=1e\+08 cannot be met: the '
                       r'minimum reachable flops .* is 2\.51942e\+08'):
        check_feasible(sp, init, Budget(layers=20, flops=1e8))
    with pytest.raises(BudgetError, match='layers=9 cannot be met.*11'):
        check_feasible(sp, init, Budget(layers=9))
    # feasible, but the initial structure is over budget
    f_init = sp.evaluate(init)[2]
    with pytest.raises(BudgetError, match='initial structure does not meet'):
        EvolutionSearch(sp, init, Budget(layers=20, flops=f_init * 0.9))


def test_budget_units():
    assert Budget(flops='4.0G')['flops'] == 4.0e9
    assert Budget(params='3.5M')['params'] == 3.5e6
    assert Budget(latency='80ms')['latency'] == pytest.approx(0.08)
    assert Budget(latency='150us')['latency'] == pytest.approx(1.5e-4)
    init = dict(params=2.0e6, flops=2.5e9, latency=0.05)
    with pytest.raises(BudgetError, match='looks like GFLOPS.*4e\\+09'):
        Budget(flops=4.0).check_plausible(init)
    with pytest.raises(BudgetError, match='looks like M; give a plain'):
        Budget(params=3.0).check_plausible(init)
    with pytest.raises(BudgetError, match='looks like ms.*0.08'):
        Budget(latency=80).check_plausible(init)
    Budget(flops=4e9, params=3e6, latency=0.08).check_plausible(init)
    for bad in (dict(flops='4 GB'), dict(latency='80 min'),
                dict(layers=20.5), dict(flops=-1), dict(latency=True),
                dict(layers='20M')):
        with pytest.raises(BudgetError):
            Budget(**bad)
    with pytest.raises(BudgetError, match="unknown key.*'flop'"):
        Budget.from_cfg(dict(flop=4e9))


def test_malformed_space_config():
    with pytest.raises(SpaceConfigError, match=r'channel_range\[2\]'):
        ResK1KXSpace(channel_range=[None, None, [128, 64], None, None, None])
    with pytest.raises(SpaceConfigError, match='mutate_methods'):
        ResK1KXSpace(mutate_methods=['out', 'depth'])
    with pytest.raises(SpaceConfigError, match='channel_range has 5 entries'):
        ResK1KXSpace(channel_range=V1_RANGES[:5]).bind(
            damoyolo_init_structure(), max_layers=20)
    with pytest.raises(SpaceConfigError, match='set budgets.layers'):
        ResK1KXSpace().bind(damoyolo_init_structure())
    # a K1KX structure in the KXKX space
    with pytest.raises(StructureError, match='searches .SuperResConvKXKX'):
        ResKXKXSpace().bind(damoyolo_init_structure(), max_layers=35)
    bad = damoyolo_init_structure()
    bad[3]['class'] = 'SuperResConvK1KXK1'
    with pytest.raises(StructureError, match='unknown block class'):
        ResK1KXSpace().bind(bad, max_layers=20)


def test_latency_table_without_kernel_rejects_candidate():
    lut = LatencyLUT.load()
    sp = ResK1KXSpace(mutate_methods=['k'], kernel_sizes=[3, 7],
                      channel_range=V1_RANGES)
    init = sp.bind(damoyolo_init_structure(), max_layers=20, lut=lut,
                   stage_weights=(0, 0, 1, 1, 16))
    child = sp.mutate(init, random.Random(0))
    assert any(b[3] == 7 for b in child)
    assert math.isinf(sp.evaluate(child)[3])
    assert Budget(latency=1.0).violation(*sp.evaluate(child)[:4]) == \
        'latency'
