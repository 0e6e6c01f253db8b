"""Key mapping from official DAMO-YOLO checkpoints to this implementation.

Official checkpoints are ``{'model': state_dict}`` with the prefixes
``backbone.``, ``neck.`` and ``head.``; the head keys keep their names under
``bbox_head.``. Every official key is translated by one fully-matching
regular expression of :data:`KEY_RULES`; a key that no rule matches is
reported as unexpected.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor

_BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'

# Suffix rules of one residual block (ResConvBlock -> TinyNASResBlock).
_RES_BLOCK = [
    (r'conv1\.conv1\.weight', r'conv1.conv.weight'),
    (r'conv1\.bn1\.' + _BN, r'conv1.bn.\1'),
    (r'conv2\.conv1\.weight', r'conv2.conv.weight'),
    (r'conv2\.bn1\.' + _BN, r'conv2.bn.\1'),
    (r'conv2\.(rbr_dense|rbr_1x1)\.(conv)\.weight', r'conv2.\1.\2.weight'),
    (r'conv2\.(rbr_dense|rbr_1x1)\.bn\.' + _BN, r'conv2.\1.bn.\2'),
    (r'conv2\.rbr_reparam\.(weight|bias)', r'conv2.rbr_reparam.\1'),
    (r'residual_proj\.conv1\.weight', r'shortcut_conv.conv.weight'),
    (r'residual_proj\.bn1\.' + _BN, r'shortcut_conv.bn.\1'),
]
# SPPBottleneck (ConvBNAct conv1 / conv2) -> DAMOSPPBottleneck.
_SPP = [
    (r'(conv[12])\.conv\.weight', r'\1.conv.weight'),
    (r'(conv[12])\.bn\.' + _BN, r'\1.bn.\2'),
]
# MobileV3Block of the backbone (nn.Sequential with an SE slot at 5).
_MOB_BACKBONE = [
    (r'conv\.0\.weight', r'expand.conv.weight'),
    (r'conv\.1\.' + _BN, r'expand.bn.\1'),
    (r'conv\.3\.weight', r'depthwise.conv.weight'),
    (r'conv\.4\.' + _BN, r'depthwise.bn.\1'),
    (r'conv\.5\.fc\.0\.weight', r'se.fc1.weight'),
    (r'conv\.5\.fc\.2\.weight', r'se.fc2.weight'),
    (r'conv\.7\.weight', r'project.conv.weight'),
    (r'conv\.8\.' + _BN, r'project.bn.\1'),
]
# MobileV3Block of the neck (no SE slot), wrapped in the neck block.
_MOB_NECK = [
    (r'conv\.conv\.0\.weight', r'expand.conv.weight'),
    (r'conv\.conv\.1\.' + _BN, r'expand.bn.\1'),
    (r'conv\.conv\.3\.weight', r'depthwise.conv.weight'),
    (r'conv\.conv\.4\.' + _BN, r'depthwise.bn.\1'),
    (r'conv\.conv\.6\.weight', r'project.conv.weight'),
    (r'conv\.conv\.7\.' + _BN, r'project.bn.\1'),
]
# BasicBlock_3x3_Reverse -> RepGFPNBasicBlock.
_REP_NECK = [
    (r'conv2\.(rbr_dense|rbr_1x1)\.conv\.weight', r'rep_conv.\1.conv.weight'),
    (r'conv2\.(rbr_dense|rbr_1x1)\.bn\.' + _BN, r'rep_conv.\1.bn.\2'),
    (r'conv2\.rbr_reparam\.(weight|bias)', r'rep_conv.rbr_reparam.\1'),
    (r'conv1\.conv\.weight', r'conv.conv.weight'),
    (r'conv1\.bn\.' + _BN, r'conv.bn.\1'),
]
# ConvBNAct (.conv / .bn) or DepthwiseConv -> ConvModule /
# DepthwiseSeparableConvModule.
_CONV = [
    (r'conv\.weight', r'conv.weight'),
    (r'bn\.' + _BN, r'bn.\1'),
    (r'depthwise\.weight', r'depthwise_conv.conv.weight'),
    (r'dwnorm\.' + _BN, r'depthwise_conv.bn.\1'),
    (r'pointwise\.weight', r'pointwise_conv.conv.weight'),
    (r'pwnorm\.' + _BN, r'pointwise_conv.bn.\1'),
]
# ConvKXBNRELU (.conv = ConvKXBN with conv1 / bn1) -> ConvModule.
_CONVKX = [
    (r'conv\.conv1\.weight', r'conv.weight'),
    (r'conv\.bn1\.' + _BN, r'bn.\1'),
]
# Focus (.conv = ConvBNAct) -> DAMOFocus.
_FOCUS = [
    (r'conv\.conv\.weight', r'conv.conv.weight'),
    (r'conv\.bn\.' + _BN, r'conv.bn.\1'),
]

_NECK_DOWN = {'bu_conv24': 'td_downsamples.0', 'bu_conv13':
              'td_downsamples.1', 'bu_conv57': 'bu_downsamples.0',
              'bu_conv76': 'bu_downsamples.1',
              'bu_conv46': 'bu_skip_downsample'}
_NECK_MERGE = {'merge_5': 'td_blocks.0', 'merge_4': 'td_blocks.1',
               'merge_3': 'td_blocks.2', 'merge_7': 'bu_blocks.0',
               'merge_6': 'bu_blocks.1'}
_CSP_PART = {'downsampler': 'downsample', 'conv_start': 'main_conv',
             'conv_shortcut': 'short_conv', 'conv_fuse': 'final_conv'}


def _shift_groups(repl: str, shift: int) -> str:
    return re.sub(r'\\(\d)', lambda m: '\\' + str(int(m.group(1)) + shift),
                  repl)


def _build_rules() -> List[Tuple['re.Pattern', str]]:
    rules = []

    def add(prefix_re, prefix_out, suffixes, ngroups):
        for s_re, s_out in suffixes:
            rules.append((re.compile(prefix_re + s_re),
                          prefix_out + _shift_groups(s_out, ngroups)))

    # backbone stem (block_list.0 for res / mob, csp_stage.0 for csp)
    for stem in (r'backbone\.block_list\.0\.', r'backbone\.csp_stage\.0\.'):
        add(stem, 'backbone.stem.', _CONVKX, 0)
        add(stem, 'backbone.stem.', _FOCUS, 0)
    # res / mob stages
    stage = r'backbone\.block_list\.([1-9]\d*)\.block_list\.(\d+)\.'
    add(stage, r'backbone.stage\1.\2.', _RES_BLOCK + _SPP + _MOB_BACKBONE, 2)
    # csp stages
    for part, ours in _CSP_PART.items():
        add(r'backbone\.csp_stage\.([1-9]\d*)\.' + part + r'\.',
            r'backbone.stage\1.' + ours + '.', _CONVKX, 1)
    add(r'backbone\.csp_stage\.([1-9]\d*)\.spp\.', r'backbone.stage\1.spp.',
        _SPP, 1)
    add(r'backbone\.csp_stage\.([1-9]\d*)\.convstem\.(\d+)\.',
        r'backbone.stage\1.blocks.\2.', _RES_BLOCK, 2)
    # neck
    for name, ours in _NECK_DOWN.items():
        add(r'neck\.' + name + r'\.', 'neck.' + ours + '.', _CONV, 0)
    for name, ours in _NECK_MERGE.items():
        for part, our_part in (('conv1', 'short_conv'), ('conv2', 'main_conv'),
                               ('conv3', 'final_conv')):
            add(r'neck\.' + name + r'\.' + part + r'\.',
                'neck.' + ours + '.' + our_part + '.', _CONV[:2], 0)
        add(r'neck\.' + name + r'\.convs\.(\d+)\.',
            'neck.' + ours + r'.blocks.\1.', _REP_NECK + _MOB_NECK, 1)
    # head: same names under bbox_head
    rules.append((re.compile(r'head\.(.+)'), r'bbox_head.\1'))
    return rules


#: Ordered (compiled pattern, replacement) pairs; the first full match wins.
KEY_RULES = _build_rules()


def official_key_to_ours(key: str) -> Optional[str]:
    """Our state-dict key for an official key (``module.`` prefix allowed),
    or ``None`` when the key belongs to no known official module."""
    if key.startswith('module.'):
        key = key[len('module.'):]
    for pattern, repl in KEY_RULES:
        m = pattern.fullmatch(key)
        if m:
            return m.expand(repl)
    return None


class CheckpointMismatchError(ValueError):
    """The official state dict does not fit the target model.

    The message is short: the count of each kind of mismatch, its first
    keys and, when known, the released variant the checkpoint fits
    (``fits``); the full lists are the attributes.
    """

    def __init__(self, missing: List[str], unexpected: List[str],
                 shape_mismatch: List[str],
                 fits: Optional[str] = None) -> None:
        self.missing, self.unexpected = missing, unexpected
        self.shape_mismatch = shape_mismatch
        self.fits = fits
        lines = ['official checkpoint does not match the model:']
        for title, keys in (('missing (model keys with no official key)',
                             missing),
                            ('unexpected (official keys with no model key)',
                             unexpected),
                            ('shape mismatch', shape_mismatch)):
            if keys:
                more = ', ...' if len(keys) > 3 else ''
                lines.append(f'  {title}: {len(keys)}: '
                             f'{", ".join(keys[:3])}{more}')
        if fits:
            lines.append(f'  the checkpoint fits the released variant '
                         f'{fits!r} (--variant {fits.split()[0]})')
        super().__init__('\n'.join(lines))


class NotAnOfficialCheckpointError(ValueError):
    """The file is no official DAMO-YOLO checkpoint (unreadable, truncated
    or already converted); the message is one line naming the file."""


def convert_official_state_dict(
        official: Mapping[str, Tensor],
        reference: Optional[Mapping[str, Tensor]] = None,
        to_float32: bool = True) -> 'OrderedDict[str, Tensor]':
    """Translate an official DAMO-YOLO state dict to our key names.

    Args:
        official: The official ``ckpt['model']`` (``module.`` prefixes are
            stripped; fp16 tensors allowed).
        reference: State dict of the target model. When given, the result
            must cover it exactly (same keys, same shapes), otherwise a
            :class:`CheckpointMismatchError` (a ``ValueError``) lists every
            missing, unexpected and mis-shaped key.
        to_float32: Cast floating tensors to fp32.

    Returns:
        OrderedDict: Our state dict (in ``reference`` order when given).

    Raises:
        CheckpointMismatchError: Unknown official keys (always) or a
            mismatch with ``reference``.
    """
    converted: Dict[str, Tensor] = {}
    unexpected = []
    for key, value in official.items():
        new_key = official_key_to_ours(key)
        if new_key is None or new_key in converted:
            unexpected.append(key)
            continue
        if to_float32 and torch.is_tensor(value) and \
                value.is_floating_point():
            value = value.float()
        converted[new_key] = value
    missing, shape_mismatch = [], []
    if reference is not None:
        from ..models.detectors.strict_load import match_variant
        fits = match_variant(converted)
        ref_keys = set(reference)
        missing = [k for k in reference if k not in converted]
        back = {official_key_to_ours(k): k for k in official}
        for k in list(converted):
            if k not in ref_keys:
                unexpected.append(back.get(k, k))
                del converted[k]
            elif tuple(converted[k].shape) != tuple(reference[k].shape):
                shape_mismatch.append(
                    f'{back.get(k, k)} -> {k}: checkpoint '
                    f'{tuple(converted[k].shape)}, model '
                    f'{tuple(reference[k].shape)}')
        if missing or unexpected or shape_mismatch:
            raise CheckpointMismatchError(missing, unexpected, shape_mismatch,
                                          fits=fits)
        return OrderedDict((k, converted[k]) for k in reference)
    if unexpected:
        raise CheckpointMismatchError([], unexpected, [])
    return OrderedDict(converted)


def extract_official_state_dict(checkpoint) -> Dict[str, Tensor]:
    """The state dict inside a loaded official checkpoint.

    Accepts ``{'model': state_dict, ...}`` (what the official trainer and
    release files hold) or a bare state dict; strips ``module.`` prefixes.
    """
    if not isinstance(checkpoint, Mapping):
        raise ValueError('official checkpoint must be a dict, got '
                         f'{type(checkpoint).__name__}')
    if 'model' in checkpoint and isinstance(checkpoint['model'], Mapping):
        state = checkpoint['model']
    elif checkpoint and all(torch.is_tensor(v) for v in checkpoint.values()):
        state = checkpoint
    else:
        raise ValueError(
            "official checkpoint has no 'model' state dict (top-level keys: "
            f'{sorted(checkpoint)[:10]})')
    return OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in state.items())


def _load_official(src: str, trust_pickle: bool):
    """``torch.load`` with one-line errors for files that are no
    checkpoint; ``weights_only`` unless ``trust_pickle``."""
    import pickle
    import zipfile
    with open(src, 'rb') as f:
        head = f.read(4)
    if trust_pickle:
        from mmengine.logging import print_log
        print_log(f'{src}: loading with full unpickling (weights_only=False,'
                  ' --trust-pickle)', logger='current', level=30)
    try:
        return torch.load(src, map_location='cpu',
                          weights_only=not trust_pickle)
    except Exception as e:  # noqa: B902  (one line per kind of file)
        text = str(e)
        looks_like_torch = head == b'PK\x03\x04' or head[:1] == b'\x80'
        if not looks_like_torch:
            raise NotAnOfficialCheckpointError(
                f'{src} is not a torch checkpoint (it does not start like '
                f'one: {head!r})') from None
        if 'weights_only' in text or 'Weights only' in text:
            raise pickle.UnpicklingError(
                f'{src}: refused to unpickle objects outside the checkpoint '
                'allow-list (nothing of it was run); only if you trust its '
                'source, pass --trust-pickle') from None
        if not isinstance(e, (RuntimeError, EOFError, ValueError,
                              pickle.UnpicklingError, zipfile.BadZipFile)):
            raise
        raise NotAnOfficialCheckpointError(
            f'{src} is truncated or damaged (an incomplete torch '
            f'checkpoint: {text.splitlines()[0] if text else repr(e)})'
        ) from None


def convert_official_checkpoint(src: str,
                                dst: str,
                                model_cfg,
                                fuse: bool = False,
                                trust_pickle: bool = False,
                                extra_meta: Optional[dict] = None) -> dict:
    """Convert an official checkpoint file into an mmengine checkpoint.

    The model described by ``model_cfg`` is built, the converted weights are
    loaded into it with ``strict=True`` (so every key and shape must match)
    and its state dict is written as ``{'meta': ..., 'state_dict': ...}``
    to ``dst`` through a temporary file and ``os.replace`` (atomic). With
    ``fuse`` the model is switched to the deploy form first (RepConv
    re-parameterised, conv+BN folded); such a checkpoint loads into a config
    with ``model.deploy=True``.

    Args:
        src: Official checkpoint path.
        dst: Output path.
        model_cfg: Model config (dict / ConfigDict) of the target variant.
        fuse: Save the deploy form.
        trust_pickle: Load ``src`` with ``weights_only=False`` (only for
            trusted files with pickled non-tensor objects).
        extra_meta: Merged into ``meta``.

    Returns:
        dict: The ``meta`` written.
    """
    import os
    import os.path as osp
    import tempfile

    from mmdet.registry import MODELS

    if not osp.isfile(src):
        raise FileNotFoundError(f'official checkpoint {src!r} not found')
    ckpt = _load_official(src, trust_pickle)
    if isinstance(ckpt, Mapping) and isinstance(
            ckpt.get('state_dict'), Mapping) and 'model' not in ckpt:
        raise NotAnOfficialCheckpointError(
            f'{src} is already a damoyolo_mm (mmengine) checkpoint '
            "('state_dict' entry); use it as it is (tools/test.py, load_from)")
    official = extract_official_state_dict(ckpt)
    src_dtypes = sorted({str(v.dtype) for v in official.values()
                         if torch.is_tensor(v) and v.is_floating_point()})
    model = MODELS.build(model_cfg)
    state = convert_official_state_dict(official, model.state_dict())
    model.load_state_dict(state, strict=True)
    model.eval()
    if fuse:
        model.switch_to_deploy()
    state_dict = OrderedDict(
        (k, v.detach().cpu().clone()) for k, v in model.state_dict().items())
    meta = dict(
        converted_from=osp.abspath(src),
        source_format='official DAMO-YOLO',
        source_dtypes=src_dtypes,
        num_official_keys=len(official),
        deploy=bool(fuse))
    if extra_meta:
        meta.update(extra_meta)
    out_dir = osp.dirname(osp.abspath(dst))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.tmp_convert_', suffix='.pth',
                               dir=out_dir)
    os.close(fd)
    try:
        torch.save(dict(meta=meta, state_dict=state_dict), tmp)
        os.replace(tmp, dst)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return meta
