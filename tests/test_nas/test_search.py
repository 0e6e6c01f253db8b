"""Evolutionary search, the config-driven runner, resume and the tool."""
import csv
import json
import os.path as osp
import sys

import pytest
from mmengine.config import Config

from damoyolo_mm.nas import (Budget, BudgetError, EvolutionSearch,
                             NASSearchRunner, SearchConfigError, count,
                             madnas_score, score)
from damoyolo_mm.nas import load_search_structure as load_structure
from damoyolo_mm.nas.evolution import Population
from damoyolo_mm.nas.registry import NAS_SPACES

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
T_CFG = osp.join(REPO, 'configs', 'nas', 'damoyolo_t_search.py')
PUBLISHED_T = 1015.1441063007652


def _t_space():
    cfg = Config.fromfile(T_CFG)
    sc = dict(cfg.search_space)
    space = NAS_SPACES.get(sc.pop('type'))(**sc)
    init = space.bind(cfg.init_structure, max_layers=20,
                      stage_weights=(0, 0, 1, 1, 16))
    return space, init


def test_search_beats_published_t_under_its_budget():
    """Official T budget: 20 layers, FLOPs <= the published T backbone's
    (TinyNAS counting at 320); 5000 candidates, fixed seed."""
    t_flops = count('tinynas_L20_k1kx')['flops']
    assert t_flops == 3996953600.0
    results = []
    for _ in range(2):
        space, init = _t_space()
        search = EvolutionSearch(space, init, Budget(layers=20,
                                                     flops=t_flops),
                                 popu_size=512, seed=13)
        for _ in range(5000):
            search.step()
        best, enc, info = search.best
        blocks = space.decode(enc)
        c = count(blocks)
        assert c['layers'] <= 20 and c['flops'] <= t_flops
        assert info[0] == pytest.approx(madnas_score(blocks), rel=1e-12)
        results.append((best, enc))
    assert results[0] == results[1]  # deterministic
    assert results[0][0] >= PUBLISHED_T, results[0]


def test_population_keeps_best_distinct():
    pop = Population(3)
    import random
    rng = random.Random(0)
    assert pop.add(('a', ), 1.0, (1.0, ))
    assert not pop.add(('a', ), 5.0, (5.0, ))  # duplicate
    assert pop.add(('b', ), 2.0, (2.0, ))
    assert pop.add(('c', ), 0.5, (0.5, ))
    assert not pop.add(('d', ), 0.4, (0.4, ))  # worse than the worst
    assert pop.add(('e', ), 3.0, (3.0, ))  # evicts c
    assert [k for k, _ in pop.ranked()] == [('e', ), ('b', ), ('a', )]
    assert ('c', ) not in pop and len(pop) == 3
    assert {pop.sample(rng) for _ in range(100)} == {('a', ), ('b', ),
                                                     ('e', )}


def _runner_cfg(work_dir, n=6000, **search):
    cfg = Config.fromfile(T_CFG)
    cfg.work_dir = str(work_dir)
    cfg.search.update(dict(num_candidates=n, checkpoint_interval=1000,
                           log_interval=2000, progress=False, plot=False,
                           popu_size=128, seed=3), **search)
    return cfg


class _Killed(Exception):
    pass


def test_killed_search_resumes_to_same_result(tmp_path, monkeypatch):
    full = NASSearchRunner.from_cfg(_runner_cfg(tmp_path / 'full')).run()

    # killed after the candidates of the 4th checkpoint were written to the
    # CSV but before the state was saved (the worst moment)
    calls = {'n': 0}
    orig = NASSearchRunner._save_state

    def dying_save(self, *args, **kwargs):
        calls['n'] += 1
        if calls['n'] == 4:
            raise _Killed
        return orig(self, *args, **kwargs)

    monkeypatch.setattr(NASSearchRunner, '_save_state', dying_save)
    with pytest.raises(_Killed):
        NASSearchRunner.from_cfg(_runner_cfg(tmp_path / 'part')).run()
    monkeypatch.setattr(NASSearchRunner, '_save_state', orig)
    rows = (tmp_path / 'part' / 'candidates.csv').read_text().splitlines()
    assert len(rows) == 1 + 4000  # more rows than the saved state knows
    assert not (tmp_path / 'part' / 'best_structure.txt').exists()

    cfg = _runner_cfg(tmp_path / 'part')
    cfg.resume = True
    resumed = NASSearchRunner.from_cfg(cfg).run()
    for key in ('score', 'structure', 'layers', 'params', 'flops', 'latency',
                'candidates', 'in_budget', 'top'):
        assert resumed[key] == full[key], key
    assert (tmp_path / 'part' / 'candidates.csv').read_bytes() == \
        (tmp_path / 'full' / 'candidates.csv').read_bytes()
    assert (tmp_path / 'part' / 'best_structure.txt').read_text() == \
        (tmp_path / 'full' / 'best_structure.txt').read_text()

    # resuming with other settings is refused
    cfg = _runner_cfg(tmp_path / 'part', seed=4)
    cfg.resume = True
    with pytest.raises(SearchConfigError, match='different settings'):
        NASSearchRunner.from_cfg(cfg).run()


def test_tool_writes_all_outputs(tmp_path, capsys):
    sys.path.insert(0, osp.join(REPO, 'tools'))
    try:
        import nas_search
    finally:
        sys.path.pop(0)
    wd = tmp_path / 'wd'
    nas_search.main([T_CFG, '--work-dir', str(wd), '--cfg-options',
                     'search.num_candidates=3000', 'search.popu_size=64'])
    out, err = capsys.readouterr()
    assert 'best madnas score' in out
    assert 'cand/s' in err and 'best=' in err  # progress bar
    info = json.loads((wd / 'nas_info.json').read_text())
    assert info['candidates'] == 3000
    budgets = info['budgets']
    assert info['layers'] <= budgets['layers'] == 20
    assert info['latency'] <= budgets['latency']
    # best structure file: DAMO-YOLO format, same score
    best = load_structure(str(wd / 'best_structure.txt'), search_format=False)
    assert best[0]['in'] == 3
    assert score(str(wd / 'best_structure.txt')) == \
        pytest.approx(info['score'], rel=1e-12)
    with open(wd / 'candidates.csv') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3000
    assert max(float(r['score']) for r in rows if r['in_budget'] == '1') \
        == pytest.approx(info['score'])
    assert all(r['score'] == '' for r in rows if r['in_budget'] == '0')
    assert (wd / 'pareto.png').stat().st_size > 10000
    assert (wd / 'search_state.pkl').exists()
    assert list(wd.glob('*.log'))
    # the detection config inherits the T config and carries the structure
    det = Config.fromfile(str(wd / 'damoyolo_t_nas_coco.py'),
                          import_custom_modules=False)
    assert det.model.backbone.type == 'TinyNASRes'
    assert load_structure(det.model.backbone.structure) == \
        load_structure(str(wd / 'best_structure.txt'))
    outs = [b['out'] for b in load_structure(det.model.backbone.structure)]
    assert det.model.neck.in_channels == [outs[i] for i in
                                          det.model.backbone.out_indices]


def test_bad_search_configs(tmp_path):
    def build(**changes):
        cfg = _runner_cfg(tmp_path / 'bad', n=10)
        for k, v in changes.items():
            cfg[k] = v
        return NASSearchRunner.from_cfg(cfg)

    with pytest.raises(SearchConfigError, match=r"search: unknown key.*popu"):
        cfg = _runner_cfg(tmp_path / 'bad', n=10)
        cfg.search['popu'] = 3
        NASSearchRunner.from_cfg(cfg)
    with pytest.raises(SearchConfigError, match="unknown key.*'budget'"):
        build(budget=dict(layers=20))
    with pytest.raises(SearchConfigError, match='search_space.type'):
        build(search_space=dict(type='ResK1DWK1Space'))
    with pytest.raises(SearchConfigError, match="unexpected keyword.*'depth'"):
        build(search_space=dict(type='ResK1KXSpace', depth=3))
    with pytest.raises(SearchConfigError, match='score.type'):
        build(score=dict(type='zen'))
    with pytest.raises(BudgetError, match='looks like ms'):
        build(budgets=dict(layers=20, latency=64.0))
    with pytest.raises(BudgetError, match='looks like GFLOPS'):
        build(budgets=dict(layers=20, flops=4.0))
    with pytest.raises(BudgetError, match='minimum reachable latency'):
        build(budgets=dict(layers=20, latency='1ms'))
    with pytest.raises(SearchConfigError, match='detection_config.base'):
        build(outputs=dict(detection_config=dict(base='../nope.py')))
    bad = load_structure('tinynas_L20_k1kx')
    bad[2]['class'] = 'MobileV3Block'
    with pytest.raises(ValueError, match='unknown block class'):
        build(init_structure=bad)
