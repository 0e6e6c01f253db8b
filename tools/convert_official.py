"""Convert an official DAMO-YOLO checkpoint into a damoyolo_mm checkpoint.

The official file holds ``{'model': state_dict}`` (fp16 or fp32, keys may
carry a ``module.`` prefix). The output is an mmengine checkpoint
``{'meta': ..., 'state_dict': ...}``, written atomically. Every official
key must map onto the model and every model key must be covered, otherwise
nothing is written and the unmatched keys are listed.

Examples:
    python tools/convert_official.py damoyolo_tinynasL20_T.pth \\
        checkpoints/damoyolo_t.pth --variant t
    python tools/convert_official.py ckpt.pth out.pth \\
        --config configs/damoyolo_s_coco.py --fuse
"""
import argparse
import os.path as osp
import sys

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)
if osp.isdir(osp.join(ROOT, 'damoyolo_mm')) and ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # run from a source checkout

from mmengine.config import Config  # noqa: E402


VARIANTS = ('ns', 'nm', 'nl', 't', 's', 'm', 'l')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert an official DAMO-YOLO checkpoint ({"model": '
        'state_dict}) into a damoyolo_mm (mmengine) checkpoint.')
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint path')
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument('--config', help='damoyolo_mm config of the model')
    group.add_argument(
        '--variant', type=str.lower, choices=VARIANTS,
        help='released variant (uses configs/damoyolo_<variant>_coco.py)')
    parser.add_argument(
        '--fuse', action='store_true',
        help='save the deploy form (RepConv re-parameterised, conv+BN '
        'folded); load it with --cfg-options model.deploy=True')
    parser.add_argument(
        '--trust-pickle', action='store_true',
        help='load the source with full unpickling (weights_only=False; '
        'runs any code the file holds): only for a trusted file that pickles '
        'more than tensors')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import pickle

    from damoyolo_mm.converters import (CheckpointMismatchError,
                                        NotAnOfficialCheckpointError,
                                        convert_official_checkpoint)
    from damoyolo_mm.utils import register_all_modules
    from damoyolo_mm.variants import variant_config
    register_all_modules(init_default_scope=True)
    config = args.config or variant_config(args.variant)
    cfg = Config.fromfile(config)
    try:
        meta = convert_official_checkpoint(
            args.src, args.dst, cfg.model, fuse=args.fuse,
            trust_pickle=args.trust_pickle, extra_meta=dict(config=config))
    except CheckpointMismatchError as e:
        print(f'error: {args.src} does not fit {config}; nothing written.\n'
              f'{e}', file=sys.stderr)
        return 1
    except (NotAnOfficialCheckpointError, pickle.UnpicklingError) as e:
        print(f'error: {e}; nothing written.', file=sys.stderr)
        return 1
    print(f'converted {meta["num_official_keys"]} official tensors '
          f'({", ".join(meta["source_dtypes"])}) from {args.src} with '
          f'{config}{" (deploy form)" if args.fuse else ""} -> {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
