"""Train a detector with damoyolo_mm (mmdet-style entry point).

Examples:
    python tools/train.py configs/damoyolo_s_coco.py --work-dir work_dirs/s
    python tools/train.py CONFIG --resume                # latest ckpt in work-dir
    python tools/train.py CONFIG --resume path/to/ckpt.pth
    mim train damoyolo_mm configs/damoyolo_s_coco.py --work-dir work_dirs/s
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
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp', action='store_true', default=False,
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the learning rate with the real batch size '
        '(auto_scale_lr.base_batch_size in the config)')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint; without a path, resume from '
        'the latest checkpoint in the work directory')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value pairs, e.g. '
        'train_dataloader.batch_size=4')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    parser.add_argument(
        '--trust-pickle', action='store_true',
        help='load the checkpoint of --resume FILE / load_from with full '
        'unpickling (weights_only=False; runs any code the file holds): only '
        'for files from a trusted source that hold more than weights (also: '
        'DAMOYOLO_TRUST_PICKLE=FILE)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def _apply_teacher_ckpt(cfg: Config, config_path: str) -> None:
    """``--cfg-options teacher_ckpt=PATH``: short form of
    ``model.teacher_ckpt=PATH`` for distillation configs."""
    ckpt = cfg.get('teacher_ckpt', None)
    if ckpt is None:
        return
    model = cfg.get('model', None)
    if not isinstance(model, dict) or 'teacher_ckpt' not in model:
        raise ValueError(
            f'teacher_ckpt={ckpt!r} was given, but the model of '
            f'{config_path!r} (type {model.get("type") if model else None!r})'
            ' takes no teacher: use a distillation config from '
            'configs/distill/')
    cfg.model.teacher_ckpt = ckpt


def build_cfg(args) -> Config:
    if not osp.isfile(args.config):
        raise FileNotFoundError(
            f'config file {args.config!r} not found (relative paths are '
            f'resolved from {os.getcwd()!r})')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    _apply_teacher_ckpt(cfg, args.config)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in \
                cfg.auto_scale_lr:
            raise RuntimeError(
                '--auto-scale-lr needs `auto_scale_lr = dict(enable=False, '
                'base_batch_size=...)` in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def main(argv=None):
    args = parse_args(argv)
    # registers mmdet's and our modules; sets the default scope to mmdet
    from damoyolo_mm.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    from damoyolo_mm.engine import setup_distributed
    cfg = build_cfg(args)
    from damoyolo_mm.engine.work_dir_lock import WorkDirLockedError
    from damoyolo_mm.utils.checkpoint_trust import (TOOL_OPT_IN,
                                                    explain_checkpoint_error,
                                                    refusal_opt_in,
                                                    trust_pickle)
    # backend from the device (gloo on CPU), SyncBN / DDP for CPU processes
    setup_distributed(cfg, args.launcher)
    checkpoint = cfg.get('load_from', None)
    try:
        with trust_pickle(checkpoint if args.trust_pickle else None), \
                refusal_opt_in(TOOL_OPT_IN + ' (--trust-pickle trusts '
                               '--resume FILE / load_from)'):
            if 'runner_type' not in cfg:
                runner = Runner.from_cfg(cfg)
            else:
                runner = RUNNERS.build(cfg)
            runner.train()
    except WorkDirLockedError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    except Exception as e:  # noqa: B902  (explained, or re-raised)
        if checkpoint is None and cfg.get('resume', False):
            from mmengine.runner import find_latest_checkpoint
            checkpoint = find_latest_checkpoint(cfg.work_dir)
        message = explain_checkpoint_error(
            e, checkpoint or 'the checkpoint to resume from')
        if message is None:
            raise
        print(f'error: {message}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    # under torchrun, the error of a failed process is shown in its summary
    from torch.distributed.elastic.multiprocessing.errors import record
    sys.exit(record(main)())
