"""Checkpoint metadata is data, never code.

mmengine 0.10.7 executes Python config text it finds inside a checkpoint:

* ``Runner.resume`` runs ``Config.fromstring(checkpoint['meta']['config'])``
  (only to compare ``gpu_ids`` with the current world size);
* ``BaseInferencer._init_model`` (mmdet's ``DetInferencer(weights=...)``
  without a model config) runs
  ``checkpoint['message_hub']['runtime_info']['cfg']`` or ``meta['cfg']``.

A checkpoint holding nothing but strings loads under ``weights_only=True``,
so such a file would run code on ``--resume`` or in ``DetInferencer``.

:func:`register` (called once by ``import damoyolo_mm``) registers, through
mmengine's own extension point ``CheckpointLoader.register_scheme``, each
checkpoint loader mmengine has (local files, ``http(s)://``,
``open-mmlab://``, ...) wrapped by :func:`data_only`: the wrapped loader
loads exactly as before (``torch.load`` is not touched), then

* removes the config text (:data:`CONFIG_TEXT_KEYS`) from what it returns,
  without executing it, and logs so (naming the file). For mmengine's
  ``gpu_ids`` check on resume, ``gpu_ids`` is read from the text as a
  literal (the text is parsed, never run) and handed on alone, as
  ``meta['config'] = 'gpu_ids = [...]'`` written from those integers;
* raises :class:`~damoyolo_mm.utils.checkpoint_trust.UntrustedPickleError`
  (the project's message: the file and the opt-in of the path that loaded
  it) instead of torch's refusal text, which advises
  ``weights_only=False``.

Files trusted explicitly (``trust_pickle`` / ``--trust-pickle`` /
``$DAMOYOLO_TRUST_PICKLE``) keep their config text: that opt-in covers it.
"""
import ast
import functools
import logging
import pickle
from typing import Any, Callable, List, Optional, Tuple

#: Where mmengine 0.10.7 keeps config text in a checkpoint.
CONFIG_TEXT_KEYS: Tuple[Tuple[str, ...], ...] = (
    ('meta', 'config'), ('meta', 'cfg'), ('message_hub', 'runtime_info',
                                          'cfg'))

_MARK = '_damoyolo_data_only'
#: more GPU ids than any machine has: the text is not a real run's
MAX_GPU_IDS = 65536


def literal_gpu_ids(text: str) -> Optional[List[int]]:
    """``gpu_ids`` of a config text if it is assigned a literal list /
    tuple of integers or ``range(...)`` of integers at top level; the text
    is parsed, not executed. ``None`` otherwise."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == 'gpu_ids'):
            continue
        value = node.value
        try:
            if (isinstance(value, ast.Call)
                    and isinstance(value.func, ast.Name)
                    and value.func.id == 'range' and not value.keywords):
                args = [ast.literal_eval(a) for a in value.args]
                if all(type(a) is int for a in args) and 1 <= len(args) <= 3:
                    ids = range(*args)
                    # a file may ask for range(10**12): never build that
                    return list(ids) if len(ids) <= MAX_GPU_IDS else None
                return None
            ids = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError,
                RecursionError):
            return None
        if isinstance(ids, (list, tuple)) and len(ids) <= MAX_GPU_IDS and all(
                type(i) is int for i in ids):
            return list(ids)
        return None
    return None


def drop_config_text(checkpoint: Any, source: str) -> Any:
    """Remove the config text of :data:`CONFIG_TEXT_KEYS` from
    ``checkpoint`` (in place; returned), logging which keys were removed.
    A literal ``gpu_ids`` of ``meta['config']`` is kept as
    ``meta['config'] = 'gpu_ids = [...]'``."""
    if not isinstance(checkpoint, dict):
        return checkpoint
    removed = []
    for keys in CONFIG_TEXT_KEYS:
        parent = checkpoint
        for key in keys[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or keys[-1] not in parent:
            continue
        text = parent.pop(keys[-1])
        removed.append('.'.join(keys))
        if keys == ('meta', 'config') and isinstance(text, str):
            gpu_ids = literal_gpu_ids(text)
            if gpu_ids is not None:
                parent['config'] = f'gpu_ids = {gpu_ids!r}\n'
    if removed:
        from mmengine.logging import print_log
        print_log(
            f'{source}: config text in the checkpoint ({", ".join(removed)}) '
            'was not executed and is ignored: checkpoint metadata is data, '
            'never code (give the model config explicitly)',
            logger='current', level=logging.INFO)
    return checkpoint


def data_only(loader: Callable) -> Callable:
    """``loader`` (an mmengine checkpoint loader ``(filename,
    map_location)``) that returns no config text and raises the project's
    message for a refused pickle."""
    if getattr(loader, _MARK, False):
        return loader

    @functools.wraps(loader)  # mmengine logs the loader's __name__
    def wrapped(filename, map_location=None, *args, **kwargs):
        from .checkpoint_trust import (UntrustedPickleError,
                                       is_weights_only_error,
                                       untrusted_message)
        try:
            checkpoint = loader(filename, map_location, *args, **kwargs)
        except pickle.UnpicklingError as e:
            if isinstance(e, UntrustedPickleError) or \
                    not is_weights_only_error(e):
                raise
            raise UntrustedPickleError(untrusted_message(filename,
                                                         e)) from None
        return drop_config_text(checkpoint, filename)

    setattr(wrapped, _MARK, True)
    return wrapped


def register() -> None:
    """Register every checkpoint loader mmengine has now, wrapped by
    :func:`data_only` (idempotent)."""
    from mmengine.runner.checkpoint import CheckpointLoader
    for prefix, loader in list(CheckpointLoader._schemes.items()):
        if not getattr(loader, _MARK, False):
            CheckpointLoader.register_scheme(
                prefixes=prefix, loader=data_only(loader), force=True)


def is_registered(prefix: str = '') -> bool:
    """Whether mmengine's loader of ``prefix`` is the data-only one."""
    from mmengine.runner.checkpoint import CheckpointLoader
    return getattr(CheckpointLoader._schemes.get(prefix), _MARK, False)
