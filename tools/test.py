"""Evaluate a trained detector (mmdet-style entry point).

Examples:
    python tools/test.py configs/damoyolo_s_coco.py work_dirs/s/best.pth
    python tools/test.py CONFIG CKPT --show-dir vis --out results.pkl
    mim test damoyolo_mm configs/damoyolo_s_coco.py --checkpoint CKPT
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

# Run from a source checkout: import the clone's damoyolo_mm rather than an
# installed copy (no-op for the copy mim runs from damoyolo_mm/.mim/tools).
_REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isfile(osp.join(_REPO, 'damoyolo_mm', '__init__.py')) and \
        _REPO not in sys.path:
    sys.path.insert(0, _REPO)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir', help='the directory to save the evaluation metrics')
    parser.add_argument(
        '--out', type=str,
        help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument(
        '--show-dir', help='directory (inside the work dir) where painted '
        'images are saved')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value pairs')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    parser.add_argument(
        '--trust-pickle', action='store_true',
        help='load the checkpoint with full unpickling (weights_only=False; '
        'runs any code the file holds): only for files from a trusted source '
        'that hold more than weights (also: DAMOYOLO_TRUST_PICKLE=FILE)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    from damoyolo_mm.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    from damoyolo_mm.engine import setup_distributed
    for path, what in ((args.config, 'config'), (args.checkpoint,
                                                  'checkpoint')):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} file {path!r} not found')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    if args.show_dir:
        vis_hook = cfg.default_hooks.get('visualization')
        if vis_hook is None:
            raise RuntimeError('--show-dir needs a `visualization` hook '
                               '(mmdet DetVisualizationHook) in default_hooks')
        vis_hook['draw'] = True
        vis_hook['test_out_dir'] = args.show_dir
        vis_hook['wait_time'] = args.wait_time
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl file, got {args.out!r}')
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(
            cfg.test_evaluator, dict) else list(cfg.test_evaluator)
        cfg.test_evaluator.append(
            dict(type='DumpDetResults', out_file_path=args.out))
    from damoyolo_mm.utils.checkpoint_trust import (TOOL_OPT_IN,
                                                    explain_checkpoint_error,
                                                    refusal_opt_in,
                                                    trust_pickle)
    # backend from the device (gloo on CPU)
    setup_distributed(cfg, args.launcher)
    try:
        with trust_pickle(args.checkpoint if args.trust_pickle else None), \
                refusal_opt_in(TOOL_OPT_IN):
            if 'runner_type' not in cfg:
                runner = Runner.from_cfg(cfg)
            else:
                runner = RUNNERS.build(cfg)
            runner.test()
    except Exception as e:  # noqa: B902  (explained, or re-raised)
        message = explain_checkpoint_error(e, args.checkpoint)
        if message is None:
            raise
        print(f'error: {message}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    # under torchrun, the error of a failed process is shown in its summary
    from torch.distributed.elastic.multiprocessing.errors import record
    sys.exit(record(main)())
