"""Atomic file writes: a file appears complete under its name or not at all.

Imports nothing else of ours (``damoyolo_mm.utils`` imports more), so every
part can use it: ``from damoyolo_mm.utils.fileio import atomic_open``.
"""
import contextlib
import errno
import os
import os.path as osp
import secrets
from typing import IO, Iterator, Optional


@contextlib.contextmanager
def atomic_open(path: str, mode: str = 'wb', prefix: Optional[str] = None,
                suffix: str = '.tmp', encoding: Optional[str] = None,
                newline: Optional[str] = None) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on a clean exit
    it is flushed, fsync'ed and renamed to ``path`` (``os.replace``), on any
    error (also ``KeyboardInterrupt``) it is removed and ``path`` is left
    as it was.

    Args:
        path: Final file name; its folder is created if needed.
        mode: ``'wb'`` or ``'w'`` (text, then ``encoding`` / ``newline``).
        prefix: Start of the temporary name (default ``.<name>.``), so that
            leftovers of a killed process can be recognised and removed.
        suffix: End of the temporary name.

    The temporary file gets the permissions a plain ``open`` would give.

    A full disk (or quota, or file size limit) while writing raises
    ``OSError`` naming ``path`` (the OS error names no file).
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f'atomic_open: mode must be "w" or "wb", got '
                         f'{mode!r}')
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if prefix is None:
        prefix = f'.{osp.basename(path)}.'
    while True:  # 'x': a new file, permissions as a plain open
        tmp = osp.join(folder, f'{prefix}{secrets.token_hex(4)}{suffix}')
        try:
            f = open(tmp, mode.replace('w', 'x'), encoding=encoding,
                     newline=newline)
            break
        except FileExistsError:
            continue
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        if isinstance(err, OSError) and err.errno in _NO_SPACE and \
                err.filename is None:
            raise OSError(err.errno, f'{err.strerror} (writing {path}; it '
                          'was left as it was)', path) from err
        raise


#: errors of a write that found no room
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
