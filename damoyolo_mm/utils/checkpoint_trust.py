"""Which checkpoint files may be fully unpickled, and how to say so.

Every checkpoint loads with ``torch.load(..., weights_only=True)`` (torch's
default since 2.6): tensors, plain Python containers and the few types of
:data:`damoyolo_mm.compat.SAFE_GLOBALS` only. A file that pickles anything
else (a foreign trainer's objects, or a malicious payload) is refused.

Full unpickling (``weights_only=False``, which can run arbitrary code) is an
explicit opt-in per call and per file:

* the tools take ``--trust-pickle`` (trust the checkpoint named on their
  command line);
* the environment variable ``DAMOYOLO_TRUST_PICKLE`` lists trusted files
  (``os.pathsep``-separated) for the tools;
* in Python, ``with trust_pickle('file.pth'): ...`` around
  ``init_detector`` / ``Runner`` / ``load_checkpoint``;
* the distillation teacher: ``model.teacher_trust_pickle=True``.

Each trusted load logs a warning naming the file. A refused file raises
:class:`UntrustedPickleError` whose message names the file and the opt-in of
the path that loaded it (:func:`refusal_opt_in` sets it; the default names
the Python opt-in).
"""
import contextlib
import contextvars
import os
import os.path as osp
import pickle
import re
from typing import Iterator, Optional, Set

import torch

#: Environment variable: ``os.pathsep``-separated checkpoint files the tools
#: load with full unpickling.
TRUST_ENV = 'DAMOYOLO_TRUST_PICKLE'


class UntrustedPickleError(pickle.UnpicklingError):
    """A checkpoint pickles objects outside the allow-list and was not
    explicitly trusted; nothing of it was executed."""


def _real(path: str) -> str:
    return osp.realpath(osp.expanduser(str(path)))


def trusted_from_env() -> Set[str]:
    """The files listed in ``$DAMOYOLO_TRUST_PICKLE`` (real paths)."""
    value = os.environ.get(TRUST_ENV, '')
    return {_real(p) for p in value.split(os.pathsep) if p.strip()}


def _warn_trusted(path: str) -> None:
    from mmengine.logging import print_log
    print_log(
        f'{path}: loading with full unpickling (weights_only=False) because '
        f'it was explicitly trusted (--trust-pickle / {TRUST_ENV}); this '
        'runs any code the file contains', logger='current',
        level=30)  # logging.WARNING


#: The opt-in named by refusals in this context (``None``: the Python one).
_OPT_IN: contextvars.ContextVar = contextvars.ContextVar(
    'damoyolo_checkpoint_opt_in', default=None)

#: The opt-in of the tools (``--trust-pickle`` trusts their checkpoint; the
#: tools and :func:`load_checkpoint_file` read ``$DAMOYOLO_TRUST_PICKLE``).
TOOL_OPT_IN = f'pass --trust-pickle or set {TRUST_ENV}={{path}}'


@contextlib.contextmanager
def refusal_opt_in(opt_in: str) -> Iterator[None]:
    """Inside the block, a refused checkpoint names ``opt_in`` (e.g.
    :data:`TOOL_OPT_IN`) as the way to trust it; ``{path}`` in the text is
    replaced by the refused file."""
    token = _OPT_IN.set(opt_in)
    try:
        yield
    finally:
        _OPT_IN.reset(token)


def _opt_in_text(path: str, opt_in: Optional[str]) -> str:
    if opt_in is None:
        opt_in = _OPT_IN.get()
    if opt_in is None:
        return (f'wrap the call in `with damoyolo_mm.utils.trust_pickle('
                f'{str(path)!r}):`')
    return opt_in.replace('{path}', str(path))


def untrusted_message(path: str, err: BaseException,
                      opt_in: Optional[str] = None) -> str:
    """One line: ``path`` was refused, why, and how to opt in (``opt_in``,
    default: the one of :func:`refusal_opt_in`, else the Python one)."""
    text = str(err)
    found = re.search(r'GLOBAL (\S+)', text)
    if found:
        reason = f'it pickles {found.group(1)}'
    else:  # torch's first line of detail, without its advice
        detail = [line.strip() for line in text.strip().splitlines()
                  if line.strip() and 'weights_only' not in line
                  and 'Weights only load failed' not in line]
        reason = (detail[0] if detail else type(err).__name__)[:200]
        reason = reason.replace('WeightsUnpickler error: ', '')
    return (f'{path}: refused to unpickle ({reason}); the file holds '
            'objects outside the checkpoint allow-list and nothing of it '
            'was run. Only if you trust its source, '
            f'{_opt_in_text(path, opt_in)}')


def is_weights_only_error(err: BaseException) -> bool:
    """Whether ``err`` is torch's refusal of a ``weights_only`` load."""
    return isinstance(err, pickle.UnpicklingError) and (
        'weights_only' in str(err) or 'Weights only' in str(err))


def load_checkpoint_file(path: str,
                         map_location='cpu',
                         trust: bool = False,
                         opt_in: Optional[str] = TOOL_OPT_IN):
    """``torch.load`` a local file: ``weights_only=True`` unless ``trust``
    (or ``$DAMOYOLO_TRUST_PICKLE`` lists it), then with a warning.

    The file is read as data: nothing in it is executed (config text
    included, which this function never interprets).

    Raises:
        UntrustedPickleError: the file needs full unpickling and is not
            trusted (the message names the file and ``opt_in``).
    """
    if trust or _real(path) in trusted_from_env():
        _warn_trusted(path)
        return torch.load(path, map_location=map_location, weights_only=False)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if is_weights_only_error(e):
            raise UntrustedPickleError(
                untrusted_message(path, e, opt_in)) from None
        raise


@contextlib.contextmanager
def trust_pickle(*paths: Optional[str]) -> Iterator[Set[str]]:
    """Load these local checkpoint files with full unpickling inside the
    ``with`` block (mmengine's ``load_checkpoint``, the Runner's
    ``load_from`` / ``resume``, ``init_detector``); every other file keeps
    ``weights_only=True``. Files of ``$DAMOYOLO_TRUST_PICKLE`` are added.

    Only mmengine's local-file loader is swapped, and only for the duration
    of the block.
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    trusted = {_real(p) for p in paths if p} | trusted_from_env()
    if not trusted:
        yield trusted
        return
    previous = CheckpointLoader._schemes.get('')

    def load_from_local_trusted(filename, map_location):
        if _real(filename) in trusted:
            if not osp.isfile(osp.expanduser(filename)):
                raise FileNotFoundError(f'{filename} can not be found.')
            _warn_trusted(filename)
            return torch.load(osp.expanduser(filename),
                              map_location=map_location, weights_only=False)
        return previous(filename, map_location)

    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local_trusted, force=True)
    try:
        yield trusted
    finally:
        CheckpointLoader.register_scheme(
            prefixes='', loader=previous, force=True)


def _file_head(path: str) -> Optional[bytes]:
    try:
        with open(osp.expanduser(path), 'rb') as f:
            return f.read(4)
    except OSError:
        return None


def explain_checkpoint_error(err: BaseException, path: str) -> Optional[str]:
    """A short message for a failure to load checkpoint ``path`` (refused
    pickle, truncated / non-torch file, model mismatch), or ``None`` if
    ``err`` is something else."""
    from damoyolo_mm.models.checkpoint import \
        StateDictMismatchError
    if isinstance(err, StateDictMismatchError):
        return f'{path} does not fit the model: {err}'
    if isinstance(err, UntrustedPickleError):
        # without the prefix mmengine's registry adds to errors of a build
        return re.sub(r'^(class `\w+` in \S+: )+', '', str(err))
    text = str(err)
    load_failure = is_weights_only_error(err) or (
        isinstance(err, (RuntimeError, EOFError, pickle.UnpicklingError))
        and ('PytorchStreamReader' in text or 'central directory' in text
             or 'invalid load key' in text or 'Ran out of input' in text
             or isinstance(err, EOFError)))
    if not load_failure:
        return None
    head = _file_head(path)
    if head is not None and head != b'PK\x03\x04' and head[:1] != b'\x80':
        return (f'{path} is not a torch checkpoint (it does not start like '
                f'one: {head!r})')
    if is_weights_only_error(err):
        return untrusted_message(path, err)
    return (f'{path} is truncated or damaged (an incomplete torch '
            f'checkpoint: {text.splitlines()[0] if text else repr(err)})')
