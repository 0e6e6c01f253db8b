"""Run a MAE-NAS backbone search from a config.

Examples:
    python tools/nas_search.py configs/nas/damoyolo_t_search.py \
        --work-dir work_dirs/nas_t
    python tools/nas_search.py CONFIG --work-dir DIR --resume
    python tools/nas_search.py CONFIG --cfg-options search.num_candidates=20000
    mim run damoyolo_mm nas_search configs/nas/damoyolo_t_search.py

The search writes to the work dir: best_structure.txt (DAMO-YOLO structure
file), a ready-to-train detection config, nas_info.json, candidates.csv,
pareto.png, search_state.pkl (resumable) and a log.
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS

# Run from a source checkout: import the clone's damoyolo_mm rather than an
# installed copy (no-op for the copy mim runs from damoyolo_mm/.mim/tools).
_REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isfile(osp.join(_REPO, 'damoyolo_mm', '__init__.py')) and \
        _REPO not in sys.path:
    sys.path.insert(0, _REPO)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='MAE-NAS backbone search')
    parser.add_argument('config', help='search config file')
    parser.add_argument('--work-dir', help='folder for the search outputs')
    parser.add_argument(
        '--resume', action='store_true',
        help='continue from <work-dir>/search_state.pkl (same settings)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value pairs, e.g. '
        'search.num_candidates=20000 budgets.latency=0.05')
    return parser.parse_args(argv)


def build_cfg(args) -> Config:
    if not osp.isfile(args.config):
        raise FileNotFoundError(
            f'config file {args.config!r} not found (relative paths are '
            f'resolved from {os.getcwd()!r})')
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.resume = args.resume
    cfg.setdefault('runner_type', 'NASSearchRunner')
    return cfg


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = build_cfg(args)
    import damoyolo_mm.nas  # noqa: F401  (registers NASSearchRunner)
    runner = RUNNERS.build(cfg)
    result = runner.run()
    print(f'best {result["score_type"]} score {result["score"]:.4f} '
          f'(layers {result["layers"]}, params {result["params"]:.0f}, '
          f'FLOPs {result["flops"]:.0f}'
          + (f', latency {result["latency"]:.4g} s' if result['latency']
             is not None else '') + ')')
    for name, path in result['files'].items():
        print(f'{name}: {path}')
    return result


if __name__ == '__main__':
    main()
    sys.exit(0)
