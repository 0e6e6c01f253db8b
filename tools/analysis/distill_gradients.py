"""Does the distillation term dominate the student's training?

Trains a distillation config for its first ``--iters`` iterations (nothing
else changed: optimizer, learning-rate and distillation-weight schedules,
clipping) and, per iteration, measures on the iteration's batch the L2 norms
of the detection and the distillation gradients on the student's backbone,
neck and head, their cosine, and the largest per-level ratio of the
distillation to the detection gradient on the neck outputs (``feat``) and
on the head outputs (``pred``), as trained and before the distiller's
``balance``. The same figures can be logged during
any training with ``custom_hooks += [dict(type='DistillGradientHook')]``.

Examples:
    python tools/analysis/distill_gradients.py \\
        configs/distill/damoyolo_demo_ns_distill_from_nm.py \\
        --teacher-ckpt work_dirs/distill_demo/teacher/epoch_110.pth --iters 50
    # DAMO-YOLO's (unbounded) neck CWD distillation
    python tools/analysis/distill_gradients.py CONFIG --teacher-ckpt CKPT \\
        --cfg-options model.distill_loss=cwd model.head_distill=None \\
        model.balance=None custom_hooks.0.end_weight=0.1 --out official.csv
"""
import argparse
import csv
import os
import os.path as osp
import sys
import tempfile

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
if osp.isdir(osp.join(ROOT, 'damoyolo_mm')) and ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # run from a source checkout

from mmengine.config import Config, DictAction  # noqa: E402

COLUMNS = ('iter', 'distill_weight', 'ratio_feat_raw', 'ratio_feat',
           'ratio_pred_raw', 'ratio_pred', 'det_backbone', 'dis_backbone', 'cos_backbone', 'det_neck',
           'dis_neck', 'cos_neck', 'det_head', 'dis_head', 'cos_head')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Per-iteration detection vs distillation gradient norms '
        'of a distillation config')
    parser.add_argument('config', help='distillation config file')
    parser.add_argument('--teacher-ckpt', required=True,
                        help='trained teacher checkpoint')
    parser.add_argument('--iters', type=int, default=50,
                        help='iterations to train and measure (default 50)')
    parser.add_argument('--interval', type=int, default=1,
                        help='measure every N iterations (default 1)')
    parser.add_argument('--work-dir', default=None,
                        help='work dir (default: a temporary one)')
    parser.add_argument('--out', default=None,
                        help='write the table as CSV to this file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. '
                        'model.balance=None to measure without the bound')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from damoyolo_mm.engine.hooks.distill_gradient_hook import \
        measure_distill_gradients
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if 'teacher_ckpt' not in cfg.get('model', {}):
        raise SystemExit(f'error: {args.config} is not a distillation '
                         'config (its model has no teacher_ckpt)')
    cfg.model.teacher_ckpt = args.teacher_ckpt
    tmp = None
    if args.work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix='distill_gradients_')
        cfg.work_dir = tmp.name
    else:
        cfg.work_dir = args.work_dir
    records = measure_distill_gradients(cfg, args.iters, args.interval)
    print(f'balance: {cfg.model.get("balance")}')
    print(' '.join(f'{c:>14}' for c in COLUMNS))
    for rec in records:
        print(' '.join(f'{rec[c]:>14d}' if c == 'iter' else
                       f'{rec[c]:>14.4g}' for c in COLUMNS))
    if args.out:
        fd, part = tempfile.mkstemp(dir=osp.dirname(osp.abspath(args.out)),
                                    suffix='.part')
        with os.fdopen(fd, 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS,
                                    extrasaction='ignore')
            writer.writeheader()
            writer.writerows(records)
        os.replace(part, args.out)
        print(f'written: {args.out}')
    if tmp is not None:
        tmp.cleanup()


if __name__ == '__main__':
    main()
