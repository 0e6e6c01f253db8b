"""Parameters and GFLOPs of a DAMO-YOLO model, in the published convention.

Deploy form (RepConv re-parameterised, BatchNorm kept), one multiply-add
= 2 FLOPs, BatchNorm 2 ops per element (the convention that reproduces the
DAMO-YOLO model zoo), counted with ``mmengine.analysis.FlopAnalyzer``.

Examples:
    python tools/analysis/get_flops.py configs/damoyolo_t_coco.py
    python tools/analysis/get_flops.py --variant ns
    python tools/analysis/get_flops.py configs/damoyolo_s_coco.py \\
        --shape 640 --count-shape 320 --bn-ops 4
"""
import argparse
import os.path as osp
import sys

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
if osp.isdir(osp.join(ROOT, 'damoyolo_mm')) and ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # run from a source checkout

from mmengine.config import Config, DictAction  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Params (deploy form) and GFLOPs of a DAMO-YOLO model')
    parser.add_argument('config', nargs='?', help='config file')
    parser.add_argument('--variant', help='released variant (ns, nm, nl, '
                        't, s, m, l) instead of a config')
    parser.add_argument(
        '--shape', type=int, nargs='+', default=None,
        help='input size (h [w]); default: the variant test size (the '
        "config's img_scale, else 640)")
    parser.add_argument(
        '--count-shape', type=int, nargs='+', default=None,
        help='trace at this size and scale by area (faster; exact for '
        'multiples of 32)')
    parser.add_argument(
        '--train-form', action='store_true',
        help='count the training structure (no RepConv re-parameterisation)')
    parser.add_argument(
        '--bn-ops', type=int, default=2,
        help='ops per BatchNorm element (2: published numbers; 4: thop 0.1.1)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    args = parser.parse_args(argv)
    if (args.config is None) == (args.variant is None):
        parser.error('give either a config or --variant')
    return args


def _size(values):
    if values is None:
        return None
    if len(values) == 1:
        return (values[0], values[0])
    if len(values) == 2:
        return tuple(values)
    raise ValueError(f'a size is h or h w, got {values}')


def main(argv=None):
    args = parse_args(argv)
    import torch
    from mmdet.registry import MODELS

    from damoyolo_mm.analysis import get_model_complexity
    from damoyolo_mm.variants import variant_config
    from damoyolo_mm.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    config = args.config or variant_config(args.variant)
    cfg = Config.fromfile(config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    shape = _size(args.shape) or tuple(cfg.get('img_scale', (640, 640)))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    params, gflops = get_model_complexity(
        model, shape, count_size=_size(args.count_shape),
        deploy=not args.train_form, bn_ops_per_element=args.bn_ops,
        copy_model=False)
    form = 'training structure' if args.train_form else 'deploy form'
    print(f'config: {config}')
    print(f'input shape: {shape[0]}x{shape[1]}')
    print(f'params ({form}): {params:,} ({params / 1e6:.2f} M)')
    print(f'GFLOPs (MACs x 2, BN {args.bn_ops} ops/element): {gflops:.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
