"""Extract the student detector from a distillation checkpoint.

A checkpoint written while training a ``DAMOYOLODistiller`` holds the keys
``student.*`` (the detector) and ``distill_loss.*`` (align convolutions,
generators); the teacher is never saved. This tool keeps the student weights
only, with plain detector key names, so that ``tools/test.py``, ``mim test``,
``init_detector`` and the deployment tools load it with the plain student
config (e.g. ``configs/damoyolo_s_coco.py``).

With EMAHook the checkpoint's ``state_dict`` holds the averaged weights (the
ones evaluated during training); they are extracted by default. ``--raw``
takes the non-averaged weights from ``ema_state_dict`` instead.

Examples:
    python tools/extract_student.py \\
        work_dirs/damoyolo_s_distill_from_m/epoch_300.pth \\
        work_dirs/damoyolo_s_distilled.pth
    python tools/extract_student.py DISTILL.pth OUT.pth \\
        --check-config configs/damoyolo_s_coco.py
"""
import argparse
import os.path as osp
import sys
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import torch

# Run from a source checkout: import the clone's damoyolo_mm rather than an
# installed copy (no-op for the copy mim runs from damoyolo_mm/.mim/tools).
_REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isfile(osp.join(_REPO, 'damoyolo_mm', '__init__.py')) and \
        _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from damoyolo_mm.utils.fileio import atomic_open  # noqa: E402

PREFIX = 'student.'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Extract a plain student checkpoint from a '
        'DAMOYOLODistiller checkpoint')
    parser.add_argument('checkpoint', help='distillation checkpoint (.pth)')
    parser.add_argument('out', help='output student checkpoint (.pth)')
    parser.add_argument(
        '--raw', action='store_true',
        help='take the non-averaged weights from `ema_state_dict` (the '
        'default `state_dict` holds the EMA weights when EMAHook was used)')
    parser.add_argument(
        '--check-config',
        help='plain student config: build it and load the extracted weights '
        'strictly before writing')
    parser.add_argument(
        '--force', action='store_true', help='overwrite an existing output')
    parser.add_argument(
        '--trust-pickle', action='store_true',
        help='load the checkpoint with full unpickling (weights_only=False; '
        'runs any code the file holds): only for files from a trusted source '
        'that hold more than weights')
    return parser.parse_args(argv)


def student_state_dict(ckpt: dict, src: str,
                       raw: bool = False) -> Dict[str, torch.Tensor]:
    """The student weights of a distillation checkpoint, prefix removed."""
    if raw:
        if 'ema_state_dict' not in ckpt:
            raise KeyError(f'{src}: --raw needs an `ema_state_dict` entry '
                           '(written by EMAHook); the checkpoint has '
                           f'{sorted(ckpt)}')
        state = ckpt['ema_state_dict']
        prefix = 'module.' + PREFIX
    else:
        if 'state_dict' not in ckpt:
            raise KeyError(f'{src}: no `state_dict` entry (keys '
                           f'{sorted(ckpt)}); expected an mmengine '
                           'checkpoint of a DAMOYOLODistiller')
        state = ckpt['state_dict']
        prefix = PREFIX
    out = OrderedDict()
    for key, value in state.items():
        name = key[7:] if key.startswith('module.') and not raw else key
        if name.startswith(prefix):
            out[name[len(prefix):]] = value
    if not out:
        raise ValueError(
            f'{src}: no `{prefix}*` keys, not a distillation checkpoint '
            f'(first keys: {list(state)[:5]})')
    return out


def check_against_config(state: Dict[str, torch.Tensor],
                         config: str) -> None:
    """Build the plain student from ``config`` and load ``state`` strictly."""
    from mmengine.config import Config

    from damoyolo_mm.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    from mmdet.registry import MODELS
    if not osp.isfile(config):
        raise FileNotFoundError(f'--check-config: {config!r} not found')
    model = MODELS.build(Config.fromfile(config).model)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(
            f'extracted weights do not fit {config}: missing keys '
            f'{missing[:10]} ({len(missing)}), unexpected keys '
            f'{unexpected[:10]} ({len(unexpected)})')


def extract(src: str,
            dst: str,
            raw: bool = False,
            check_config: Optional[str] = None,
            force: bool = False,
            trust_pickle: bool = False) -> Dict[str, torch.Tensor]:
    """Extract the student of ``src`` into ``dst``; returns its state dict.

    ``src`` loads with ``weights_only=True`` unless ``trust_pickle`` (or
    ``$DAMOYOLO_TRUST_PICKLE`` lists it)."""
    from damoyolo_mm.utils.checkpoint_trust import load_checkpoint_file
    if not osp.isfile(src):
        raise FileNotFoundError(f'checkpoint {src!r} not found')
    if osp.abspath(src) == osp.abspath(dst):
        raise ValueError('the output must differ from the input checkpoint')
    if osp.exists(dst) and not force:
        raise FileExistsError(f'{dst!r} exists (use --force to overwrite)')
    ckpt = load_checkpoint_file(src, map_location='cpu', trust=trust_pickle)
    if not isinstance(ckpt, dict):
        raise TypeError(f'{src}: expected a dict checkpoint, got '
                        f'{type(ckpt).__name__}')
    state = student_state_dict(ckpt, src, raw=raw)
    if check_config is not None:
        check_against_config(state, check_config)
    meta = dict(ckpt.get('meta') or {})
    distill_cfg = meta.pop('cfg', None)
    meta.pop('hook_msgs', None)
    meta['extracted_from'] = osp.abspath(src)
    meta['extracted_weights'] = 'raw' if raw else 'state_dict'
    if distill_cfg is not None:
        meta['distill_cfg'] = distill_cfg
    with atomic_open(dst, 'wb') as f:
        torch.save(dict(meta=meta, state_dict=state), f)
    return state


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    from damoyolo_mm.utils.checkpoint_trust import UntrustedPickleError
    try:
        state = extract(args.checkpoint, args.out, raw=args.raw,
                        check_config=args.check_config, force=args.force,
                        trust_pickle=args.trust_pickle)
    except UntrustedPickleError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    n = sum(v.numel() for v in state.values())
    print(f'wrote {args.out}: {len(state)} tensors, {n} values '
          f'(student of {args.checkpoint})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
