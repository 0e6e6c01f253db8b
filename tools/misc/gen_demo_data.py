"""Generate the embedded demo detection dataset (COCO format, no download).

Example:
    python tools/misc/gen_demo_data.py --out-dir data/demo --seed 0
"""
import argparse
import os.path as osp
import sys

# Run from a source checkout: import the clone's damoyolo_mm rather than an
# installed copy (no-op for the copy mim runs from damoyolo_mm/.mim/tools).
_REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(_REPO, 'damoyolo_mm', '__init__.py')) and \
        _REPO not in sys.path:
    sys.path.insert(0, _REPO)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Write the deterministic demo detection dataset '
        '(5 shape classes, textured backgrounds) in COCO format.')
    parser.add_argument('--out-dir', default='data/demo',
                        help='dataset root (default: data/demo)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-train', type=int, default=160)
    parser.add_argument('--num-val', type=int, default=40)
    parser.add_argument('--img-size', type=int, nargs=2, default=[320, 320],
                        metavar=('H', 'W'))
    parser.add_argument('--force', action='store_true',
                        help='rewrite even if a complete dataset exists')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from damoyolo_mm.datasets import demo_dataset_exists, generate_demo_dataset
    expected = dict(train=args.num_train, val=args.num_val)
    if not args.force and demo_dataset_exists(args.out_dir, expected):
        print(f'demo dataset already complete in {args.out_dir} '
              '(use --force to rewrite)')
        return 0
    paths = generate_demo_dataset(
        args.out_dir, seed=args.seed, num_train=args.num_train,
        num_val=args.num_val, img_size=tuple(args.img_size))
    print(f'demo dataset written: {paths["train"]}, {paths["val"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
