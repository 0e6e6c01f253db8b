"""Write a COCO annotation file with only some of its classes.

The kept categories are renumbered 1..K in the order given; annotations of
the other classes are dropped; every image is kept (same image folder).

Example (3 of the 5 demo classes, as a new task):
    python tools/misc/coco_subset.py \\
        data/demo_newtask/annotations/instances_train.json \\
        data/demo_newtask/annotations/shapes3_train.json \\
        --classes disk triangle cross
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
        description='Write a COCO annotation file restricted to the given '
        'classes (renumbered 1..K in that order; other annotations dropped; '
        'all images kept).')
    parser.add_argument('src', help='COCO annotation file to read')
    parser.add_argument('dst', help='annotation file to write')
    parser.add_argument('--classes', nargs='+', required=True,
                        help='category names to keep, in the new order')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from damoyolo_mm.datasets.coco_subset import coco_subset
    try:
        counts = coco_subset(args.src, args.dst, args.classes)
    except (OSError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'{args.dst}: {len(args.classes)} classes '
          f'({", ".join(args.classes)}), {counts["images"]} images, '
          f'{counts["annotations"]} boxes kept, {counts["dropped"]} dropped')
    return 0


if __name__ == '__main__':
    sys.exit(main())
