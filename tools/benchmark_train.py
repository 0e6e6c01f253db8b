"""Time one DAMO-YOLO training step, split into its parts.

Parts (milliseconds per iteration; median over the timed iterations):

* ``data``     - the config's train pipeline + collate for one batch
  (``--data config``, in this process, no workers) and the model's
  data_preprocessor; with ``--data synthetic`` only the preprocessor
* ``forward``  - backbone + neck + head convolutions
* ``assign``   - label assignment (AlignOTA), timed inside the loss
* ``loss``     - the rest of the loss (decoding, QFL, GIoU, DFL)
* ``backward`` - ``loss.backward()``
* ``optim``    - optimizer step + zero_grad
* ``ema``      - EMA update of the weights

With ``--official-root`` the same batch (same input tensor and boxes) is
also fed to the reference DAMO-YOLO implementation (its model, optimizer and
EMA built the way its trainer builds them), iterations of both interleaved,
and the ratios ours / official are printed. The work is done by
:mod:`damoyolo_mm.benchmark.train_step`.

Examples::

    python tools/benchmark_train.py configs/damoyolo_t_coco.py \
        --batch-size 8 --img-size 320 --threads 2 \
        --official-root ../DAMO-YOLO   # a checkout of tinyvision/DAMO-YOLO
    python tools/benchmark_train.py configs/quickstart/damoyolo_quickstart.py \
        --data config --batch-size 8 --memory-format channels_last
"""
import argparse
import json
import os.path as osp
import sys

# Run from a source checkout: import the clone's damoyolo_mm rather than an
# installed copy (no-op for the copy mim runs from damoyolo_mm/.mim/tools).
_REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isfile(osp.join(_REPO, 'damoyolo_mm', '__init__.py')) and \
        _REPO not in sys.path:
    sys.path.insert(0, _REPO)

import torch  # noqa: E402

from damoyolo_mm.benchmark.train_step import (PARTS,  # noqa: E402,F401
                                              STEP_PARTS, benchmark_train)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Time the parts of a DAMO-YOLO training step')
    parser.add_argument('config', help='config file')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument(
        '--img-size', type=int, default=None,
        help='square input size (default: the config\'s train size)')
    parser.add_argument('--iters', type=int, default=10,
                        help='timed iterations')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed iterations first')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch intra-op threads (default: torch\'s)')
    parser.add_argument(
        '--data', choices=['synthetic', 'config'], default='synthetic',
        help='synthetic: random image + boxes (same for both '
        'implementations); config: batches from the config\'s train '
        'dataloader (needs its data on disk)')
    parser.add_argument('--num-gts', type=int, default=8,
                        help='boxes per synthetic image')
    parser.add_argument(
        '--memory-format', choices=['contiguous', 'channels_last'],
        default=None, help='memory format of our model (default: that of '
        'the config\'s MemoryFormatHook, else contiguous)')
    parser.add_argument('--no-ema', action='store_true',
                        help='do not time the EMA update')
    parser.add_argument(
        '--official-root', default=None,
        help='path of the reference DAMO-YOLO repository to compare with')
    parser.add_argument(
        '--official-config', default=None,
        help='reference config (file name in <root>/configs or a path); '
        'default: matched to the config name')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', default=None,
                        help='also write the figures to this json file')
    return parser.parse_args(argv)


def print_header(res: dict) -> None:
    print('machine:')
    for k, v in res['machine'].items():
        print(f'  {k}: {v}')
    print(f'config: {res["config"]}  batch {res["batch_size"]}  input '
          f'{res["img_size"]}x{res["img_size"]}  data {res["data"]}  memory '
          f'format {res["memory_format"]}  iters {res["iters"]} '
          f'(+{res["warmup"]} warm-up)')
    if 'reference' in res:
        ref = res['reference']
        print(f'reference: {ref["root"]} ({ref["config"]}); stand-ins for '
              f'missing modules: {ref["stand_ins"] or "none"}')


def main(argv=None):
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    from mmengine.config import Config
    from mmengine.logging import MMLogger

    from damoyolo_mm.utils import register_all_modules
    # keep mmengine's per-parameter optimizer messages out of the output
    MMLogger.get_instance('benchmark_train', log_level='WARNING')
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(args.config)
    res = benchmark_train(
        cfg, args.config, batch_size=args.batch_size, size=args.img_size,
        iters=args.iters, warmup=args.warmup, data=args.data,
        num_gts=args.num_gts, memory_format=args.memory_format,
        with_ema=not args.no_ema, official_root=args.official_root,
        official_config=args.official_config, seed=args.seed,
        on_start=print_header)
    official = res.get('official')
    header = f'{"part":<10}{"ours ms":>12}'
    if official:
        header += f'{"official ms":>14}{"ours/official":>15}'
    print('\nmedian per iteration:')
    print(header)
    for part in PARTS + ('total', ):
        mine = res['ours'].get(part, 0.)
        row = f'{part:<10}{mine:>12.1f}'
        if official:
            ref = official.get(part, 0.)
            ratio = mine / ref if ref > 0 else float('nan')
            row += f'{ref:>14.1f}{ratio:>15.2f}'
        print(row)
    if official:
        ours_step = sum(res['ours'].get(p, 0.) for p in STEP_PARTS)
        ref_step = sum(official.get(p, 0.) for p in STEP_PARTS)
        print(f'\ntraining step without data: ours {ours_step:.1f} ms, '
              f'official {ref_step:.1f} ms, ratio {res["ratio_step"]:.2f}')
        print(f'assigner: ratio {res["ratio_assign"]:.2f}')
    print(f'losses of the last iteration: {res["last_losses"]}')
    before = res['machine'].get('loadavg', '').split(' ')[0] or None
    print(f'load average (1 min) before / after: {before} / '
          f'{res["machine"].get("loadavg_1m_after")}')
    if args.json:
        from damoyolo_mm.utils.fileio import atomic_open
        with atomic_open(args.json, 'w', encoding='utf-8') as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == '__main__':
    main()
