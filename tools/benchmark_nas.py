"""Benchmark the MAE-NAS search speed (candidates per second).

Runs the search of a config (default: the DAMO-YOLO-T search, madnas score,
analytic layer / FLOPs / params budgets, latency from the table) and prints
candidates/s and the machine. ``--mode loop`` times the bare evolutionary
loop; ``--mode runner`` (default) the full runner with the CSV of all
candidates, the state checkpoints, the progress bar and the final outputs.

    python tools/benchmark_nas.py                       # 500 000 candidates
    python tools/benchmark_nas.py --candidates 100000 --mode loop
"""
import argparse
import os
import os.path as osp
import sys
import platform
import tempfile
import time

import torch
from mmengine.config import Config

# Run from a source checkout: import the clone's damoyolo_mm rather than an
# installed copy (no-op for the copy mim runs from damoyolo_mm/.mim/tools).
_REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isfile(osp.join(_REPO, 'damoyolo_mm', '__init__.py')) and \
        _REPO not in sys.path:
    sys.path.insert(0, _REPO)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='MAE-NAS search speed')
    p.add_argument('--config', default=osp.join(
        REPO, 'configs', 'nas', 'damoyolo_t_search.py'))
    p.add_argument('--candidates', type=int, default=500000)
    p.add_argument('--mode', choices=['runner', 'loop'], default='runner')
    p.add_argument('--work-dir', default=None,
                   help='runner outputs (default: a temporary folder)')
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def machine() -> str:
    from damoyolo_mm.nas.latency import _cpu_name
    return (f'{platform.platform()} | {_cpu_name()} | cpu_count '
            f'{os.cpu_count()} | usable cpus '
            f'{len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"}'  # noqa: E501
            f' | torch {torch.__version__}, threads {torch.get_num_threads()}'
            f' | python {platform.python_version()}')


def main(argv=None):
    args = parse_args(argv)
    from damoyolo_mm.nas import Budget, EvolutionSearch, LatencyLUT
    from damoyolo_mm.nas.registry import NAS_SPACES
    from damoyolo_mm.nas.runner import NASSearchRunner
    cfg = Config.fromfile(args.config)
    print(f'machine: {machine()}')
    print(f'config: {args.config} | mode {args.mode} | candidates '
          f'{args.candidates} | population {cfg.search.popu_size} | score '
          f'{cfg.score.type} | budgets {dict(cfg.budgets)}', flush=True)
    if args.mode == 'loop':
        sc = dict(cfg.search_space)
        space = NAS_SPACES.get(sc.pop('type'))(**sc)
        budget = Budget.from_cfg(cfg.budgets)
        lut = LatencyLUT.load(cfg.latency.lut) if \
            budget['latency'] is not None else None
        init = space.bind(cfg.init_structure, max_layers=budget['layers'],
                          lut=lut, stage_weights=cfg.score.stage_weights)
        search = EvolutionSearch(space, init, budget,
                                 popu_size=cfg.search.popu_size,
                                 seed=cfg.search.seed)
        t0 = time.perf_counter()
        for _ in range(args.candidates):
            search.step()
        elapsed = time.perf_counter() - t0
        best = search.best[0]
    else:
        tmp = None
        if args.work_dir is None:
            tmp = tempfile.TemporaryDirectory()
        cfg.work_dir = args.work_dir or tmp.name
        cfg.search.num_candidates = args.candidates
        cfg.search.progress = not args.no_progress
        t0 = time.perf_counter()
        result = NASSearchRunner.from_cfg(cfg).run()
        elapsed = time.perf_counter() - t0
        best = result['score']
        if tmp is not None:
            tmp.cleanup()
    rate = args.candidates / elapsed
    print(f'{args.candidates} candidates in {elapsed:.1f} s = {rate:.0f} '
          f'candidates/s (best {cfg.score.type} {best:.4f}); a 500000-'
          f'candidate search takes {500000 / rate / 60:.1f} min')
    return rate


if __name__ == '__main__':
    main()
