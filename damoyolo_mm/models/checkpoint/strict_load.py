"""Strict checkpoint loading for DAMO-YOLO detectors.

mmengine's ``load_checkpoint`` (used by ``load_from``, ``tools/test.py``,
``init_detector`` and ``DetInferencer``) loads with ``strict=False``: a
checkpoint of another variant becomes ~200 warning lines and a model with
random weights. :class:`~damoyolo_mm.models.detectors.DAMOYOLO` calls
:func:`check_state_dict` from ``_load_from_state_dict``, i.e. on every
loading path, and raises :class:`StateDictMismatchError` (one short message:
counts, the first keys, the released variant the checkpoint fits).

Deliberate partial loading (e.g. fine-tuning with another class count) is
declared in the model config::

    model = dict(
        type='DAMOYOLO', ...,
        partial_load=dict(skip=[r'bbox_head\\.gfl_cls\\..*']))

A key that fully matches one of the ``skip`` patterns may be missing from
the checkpoint, absent from the model or of another shape: it is then not
loaded (the model keeps its initial value) and listed in one log line with
the reason (checkpoint and model shapes). When
it fits, it loads as usual (so resuming such a fine-tuning run restores it).
Every other key must fit exactly.
"""
import hashlib
import logging
import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

#: sha1 (first 12 hex digits) of the backbone + neck keys and shapes ->
#: (released variant, deploy form). Written by
#: ``variant_fingerprint(model.state_dict())`` for every released config.
VARIANT_FINGERPRINTS: Dict[str, Tuple[str, bool]] = {
    'f02cbc03314f': ('ns', False),
    '070b16101102': ('ns', True),
    '3692d2600bd6': ('nm', False),
    'd16ca4862910': ('nm', True),
    'e3275198a944': ('nl', False),
    '33ade38a9786': ('nl', True),
    'fde35c08a99f': ('t', False),
    '56bcf0c01d1f': ('t', True),
    'fab0b24a5586': ('s', False),
    'e38334180b77': ('s', True),
    'dcfeea18480f': ('m', False),
    '59b2f1741ffe': ('m', True),
    '41a56346e071': ('l', False),
    '9ac5f9a4986a': ('l', True),
}

_SHOWN = 3


class StateDictMismatchError(ValueError):
    """A checkpoint does not fit the DAMO-YOLO model it is loaded into."""

    def __init__(self, message: str, missing: List[str],
                 unexpected: List[str], mismatched: List[str]) -> None:
        super().__init__(message)
        self.missing = missing
        self.unexpected = unexpected
        self.mismatched = mismatched


def variant_fingerprint(state_dict: Mapping, prefix: str = '') -> str:
    """Fingerprint of the backbone and neck (keys and shapes, independent of
    the class count) of a state dict, keys taken under ``prefix``."""
    items = sorted(
        (k[len(prefix):], tuple(getattr(v, 'shape', ())))
        for k, v in state_dict.items()
        if k.startswith(prefix) and k[len(prefix):].startswith(
            ('backbone.', 'neck.')))
    return hashlib.sha1(repr(items).encode()).hexdigest()[:12]


def match_variant(state_dict: Mapping, prefix: str = '') -> Optional[str]:
    """The released variant whose backbone and neck the state dict fits,
    e.g. ``'t'`` or ``'t (deploy form)'``, else ``None``."""
    hit = VARIANT_FINGERPRINTS.get(variant_fingerprint(state_dict, prefix))
    if hit is None:
        return None
    return hit[0] + (' (deploy form)' if hit[1] else '')


class PartialLoad:
    """The ``partial_load`` option of the detector (see module doc).

    Args:
        skip (Sequence[str]): Regular expressions (full match) of state-dict
            keys that may not fit; empty means strict loading.
    """

    def __init__(self, skip: Sequence[str] = ()) -> None:
        if isinstance(skip, str):
            skip = [skip]
        try:
            self.patterns = [re.compile(p) for p in skip]
        except (re.error, TypeError) as e:
            raise ValueError(f'partial_load.skip must be a list of regular '
                             f'expressions, got {skip!r}: {e}') from e

    @classmethod
    def build(cls, cfg) -> 'PartialLoad':
        if cfg is None:
            return cls()
        if isinstance(cfg, PartialLoad):
            return cfg
        if not isinstance(cfg, Mapping) or set(cfg) - {'skip'}:
            raise ValueError("partial_load must be None or dict(skip=[regex, "
                             f"...]), got {cfg!r}")
        return cls(**cfg)

    def skips(self, key: str) -> bool:
        return any(p.fullmatch(key) for p in self.patterns)


def _first(keys: List[str]) -> str:
    more = f', ... ({len(keys)} in all)' if len(keys) > _SHOWN else ''
    return ', '.join(keys[:_SHOWN]) + more


def check_state_dict(state_dict: dict,
                     prefix: str,
                     own: Mapping,
                     partial: PartialLoad,
                     logger: Optional[logging.Logger] = None) -> None:
    """Check the keys under ``prefix`` of ``state_dict`` against ``own``
    (the model's state dict); drop the skipped ones from ``state_dict``.

    Raises:
        StateDictMismatchError: a key outside ``partial.skip`` does not fit.
    """
    incoming = {k[len(prefix):]: k for k in state_dict if k.startswith(prefix)}
    missing = [k for k in own if k not in incoming]
    unexpected = [k for k in incoming if k not in own]
    mismatched = [
        k for k in own if k in incoming and hasattr(
            state_dict[incoming[k]], 'shape') and tuple(
                state_dict[incoming[k]].shape) != tuple(own[k].shape)
    ]
    skipped = [k for k in missing + unexpected + mismatched
               if partial.skips(k)]
    bad_missing = [k for k in missing if not partial.skips(k)]
    bad_unexpected = [k for k in unexpected if not partial.skips(k)]
    bad_mismatched = [k for k in mismatched if not partial.skips(k)]
    if bad_missing or bad_unexpected or bad_mismatched:
        raise StateDictMismatchError(
            _mismatch_message(state_dict, prefix, own, incoming,
                              bad_missing, bad_unexpected, bad_mismatched),
            bad_missing, bad_unexpected, bad_mismatched)
    reasons = []
    for k in skipped:
        if k in missing:
            why = 'not in the checkpoint'
        elif k in unexpected:
            why = 'not in the model'
        else:
            why = (f'checkpoint {tuple(state_dict[incoming[k]].shape)} '
                   f'model {tuple(own[k].shape)}')
        reasons.append(f'{k} ({why})')
    # a skipped key of the model gets the model's own value (so that torch
    # reports no missing key); one the model lacks is removed
    for k in skipped:
        if k in own:
            state_dict[prefix + k] = own[k]
        else:
            del state_dict[incoming[k]]
    if logger is None:
        return
    if skipped:
        logger.warning(
            f'partial_load: {len(skipped)} keys not loaded (they match '
            'model.partial_load.skip and keep their initial values): '
            f'{", ".join(reasons)}')
    fitting = [k for k in own if k in incoming and partial.skips(k)
               and k not in mismatched]
    if fitting:
        logger.info(
            f'partial_load: {len(fitting)} keys match model.partial_load.skip '
            f'but fit the model, loaded: {", ".join(fitting)}')


def _mismatch_message(state_dict, prefix, own, incoming, missing,
                      unexpected, mismatched) -> str:
    if not incoming:
        return ('the checkpoint holds no weights of this DAMO-YOLO model '
                f'(no key{" under " + repr(prefix) if prefix else ""}; '
                f'{len(own)} expected)')
    lines = [f'the checkpoint does not fit this DAMO-YOLO model: '
             f'{len(missing)} missing, {len(unexpected)} unexpected, '
             f'{len(mismatched)} shape-mismatched keys']
    if missing:
        lines.append(f'  missing: {_first(missing)}')
    if unexpected:
        lines.append(f'  unexpected: {_first(unexpected)}')
    if mismatched:
        shown = [f'{k} checkpoint {tuple(state_dict[incoming[k]].shape)} '
                 f'model {tuple(own[k].shape)}' for k in mismatched]
        lines.append(f'  shape mismatch: {_first(shown)}')
    fits = match_variant(state_dict, prefix)
    ours = match_variant(own)
    if fits is not None and fits != ours:
        lines.append(f'  the checkpoint fits the released variant {fits!r} '
                     f'(configs/damoyolo_{fits.split()[0]}_coco.py)'
                     f'{"; the model is " + repr(ours) if ours else ""}')
    elif not missing and not unexpected and all(
            k.startswith('bbox_head.gfl_cls.') for k in mismatched):
        lines.append(
            '  only the class layers differ (another class count?); to '
            'fine-tune, set model.partial_load=dict(skip=['
            'r"bbox_head\\.gfl_cls\\..*"]) (see configs/finetune/)')
    else:
        lines.append('  to load only a part on purpose, set '
                     'model.partial_load=dict(skip=[regex, ...])')
    return '\n'.join(lines)
