"""Official DAMO-YOLO checkpoint files -> mmengine checkpoints
(``tools/convert_official.py``).

The key mapping and the checks live with the model
(:mod:`damoyolo_mm.models.checkpoint.official`), which also converts an
official file in memory wherever a checkpoint is accepted; this module reads
the file safely (``weights_only=True`` unless the caller trusts it), builds
the target model and writes the converted checkpoint atomically.
"""
from collections import OrderedDict
from typing import Mapping, Optional

import torch

from ..models.checkpoint.official import (CheckpointMismatchError,
                                          coco_dataset_meta,
                                          convert_official_state_dict,
                                          extract_official_state_dict)
from ..utils.fileio import atomic_open

__all__ = ['NotAnOfficialCheckpointError', 'convert_official_checkpoint',
           'CheckpointMismatchError']


class NotAnOfficialCheckpointError(ValueError):
    """The file is no official DAMO-YOLO checkpoint (unreadable, truncated
    or already converted); the message is one line naming the file."""


def _load_official(src: str, trust_pickle: bool):
    """Read ``src`` like every checkpoint (``weights_only=True`` unless
    trusted per file: ``trust_pickle`` or ``$DAMOYOLO_TRUST_PICKLE``), with
    one-line errors for files that are no checkpoint."""
    import pickle
    import zipfile

    from ..utils.checkpoint_trust import (UntrustedPickleError,
                                          load_checkpoint_file)
    with open(src, 'rb') as f:
        head = f.read(4)
    try:
        return load_checkpoint_file(src, trust=trust_pickle)
    except Exception as e:  # noqa: B902  (one line per kind of file)
        text = str(e)
        looks_like_torch = head == b'PK\x03\x04' or head[:1] == b'\x80'
        if not looks_like_torch:
            raise NotAnOfficialCheckpointError(
                f'{src} is not a torch checkpoint (it does not start like '
                f'one: {head!r})') from None
        if isinstance(e, UntrustedPickleError):
            raise  # names the file and the opt-in
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
    to ``dst`` atomically (:func:`~damoyolo_mm.utils.fileio.atomic_open`);
    ``meta.dataset_meta`` holds the COCO classes and palette. With
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
    import os.path as osp

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
        deploy=bool(fuse),
        # the released weights are COCO-trained: DetInferencer /
        # init_detector label with these names
        dataset_meta=coco_dataset_meta())
    if extra_meta:
        meta.update(extra_meta)
    with atomic_open(dst, 'wb') as f:
        torch.save(dict(meta=meta, state_dict=state_dict), f)
    return meta
