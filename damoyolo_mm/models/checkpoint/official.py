"""Official DAMO-YOLO checkpoints in our models: key mapping and in-memory
conversion.

Official checkpoints are ``{'model': state_dict}`` with the prefixes
``backbone.``, ``neck.`` and ``head.``; the head keys keep their names under
``bbox_head.``. Every official key is translated by one fully-matching
regular expression of :data:`KEY_RULES`; a key that no rule matches is
reported as unexpected.

This is the one code path for official checkpoints:
``DAMOYOLO._load_from_state_dict`` calls :func:`convert_official_in_place`
(``load_from``, ``--checkpoint``, ``init_detector``, ``DetInferencer``,
MMDeploy), ``OfficialCheckpointHook`` calls it before the EMA hook reads the
checkpoint, and :mod:`damoyolo_mm.converters.official`
(``tools/convert_official.py``) converts files with
:func:`convert_official_state_dict`.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, MutableMapping, Optional, Tuple

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
            variant = fits.split()[0]
            lines.append(f'  the checkpoint fits the released variant '
                         f'{fits!r}: use configs/damoyolo_{variant}_coco.py '
                         f'(tools/convert_official.py --variant {variant})')
        super().__init__('\n'.join(lines))


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
        from .strict_load import match_variant
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


#: top-level key prefixes only the official layout has (ours: ``bbox_head.``,
#: ``backbone.stem`` / ``backbone.stage<i>``, ``neck.td_*`` / ``neck.bu_*``)
_OFFICIAL_PREFIXES = ('head.', 'backbone.block_list.', 'backbone.csp_stage.',
                      'neck.merge_', 'neck.bu_conv')
_OUR_PREFIXES = ('bbox_head.', 'backbone.stem.', 'neck.td_blocks.')


def is_official_checkpoint(checkpoint) -> bool:
    """Whether a loaded checkpoint (or state dict) has the official layout.

    True for ``{'model': state_dict, ...}`` and for a bare state dict whose
    keys carry the official module names (``head.``,
    ``backbone.block_list.``, ...; ``module.`` prefixes allowed); False for
    mmengine checkpoints (``state_dict`` entry) and our key names.
    """
    if not isinstance(checkpoint, Mapping) or not checkpoint or \
            'state_dict' in checkpoint:
        return False
    state = checkpoint
    if isinstance(checkpoint.get('model'), Mapping):
        state = checkpoint['model']
    keys = [k[len('module.'):] if k.startswith('module.') else k
            for k in state if isinstance(k, str)]
    return any(k.startswith(_OFFICIAL_PREFIXES) for k in keys) and \
        not any(k.startswith(_OUR_PREFIXES) for k in keys)


def coco_dataset_meta() -> dict:
    """``dataset_meta`` of the released weights (COCO classes, palette), as
    mmdet's :class:`~mmdet.datasets.CocoDataset` defines them."""
    from mmdet.datasets import CocoDataset
    meta = CocoDataset.METAINFO
    return dict(classes=tuple(meta['classes']),
                palette=[tuple(int(c) for c in p) for p in meta['palette']])


def convert_official_in_place(state_dict: MutableMapping,
                              prefix: str = '',
                              logger: str = 'current',
                              how_read: str = '') -> bool:
    """Convert an official checkpoint found in ``state_dict`` in place.

    Called with the state dict being loaded into a DAMO-YOLO detector (the
    whole dict at ``prefix``). When the entries under ``prefix`` are an
    official checkpoint (``{'model': ...}`` or official key names), they are
    replaced by our keys and one log line says so; otherwise nothing
    changes. Whether they fit the model is checked by the loading that
    follows (:func:`~.strict_load.check_state_dict`, which honours the
    model's declared ``partial_load``, e.g. a head of another class count).

    Args:
        state_dict: The dict being loaded (modified in place).
        prefix: Key prefix of the detector in ``state_dict``.
        logger: mmengine logger for the log line.
        how_read: how the caller read the file (e.g. ``'torch.load,
            weights_only=True'``), added to the log line.

    Returns:
        bool: whether a conversion happened.

    Raises:
        CheckpointMismatchError: official keys that no rule maps.
    """
    own = {k[len(prefix):]: k for k in list(state_dict)
           if isinstance(k, str) and k.startswith(prefix)}
    sub = {rel: state_dict[full] for rel, full in own.items()}
    if not is_official_checkpoint(sub):
        return False
    official = extract_official_state_dict(sub)
    converted = convert_official_state_dict(official)
    for full in own.values():
        del state_dict[full]
    for key, value in converted.items():
        state_dict[prefix + key] = value
    from mmengine.logging import print_log
    dtypes = sorted({str(v.dtype).replace('torch.', '')
                     for v in official.values()
                     if torch.is_tensor(v) and v.is_floating_point()})
    read = f'read with {how_read}, ' if how_read else ''
    print_log(
        f'official DAMO-YOLO checkpoint ({len(official)} tensors, '
        f'{"/".join(dtypes)}) converted in memory to damoyolo_mm keys '
        f'({read}same mapping as tools/convert_official.py)', logger=logger)
    return True
