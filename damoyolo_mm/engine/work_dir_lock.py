"""One training run per work directory.

Two trainings writing into the same work dir overwrite each other's
checkpoints, ``last_checkpoint`` and config dump without a word.
:class:`WorkDirLock` is a lock file in the work dir (``run.lock``) holding
the pid, host, start time and command of the run that holds it:

* it is held with ``fcntl.flock`` on the open file, so the kernel releases
  it when the holding process dies in any way (``kill -9`` included); a
  lock file left by a dead process is taken over, with a warning naming
  that run;
* a second run into a held work dir stops at once with
  :class:`WorkDirLockedError` naming the running one (``--resume`` too);
* the file is removed when the run ends.

On a shared file system ``flock`` is only seen by other hosts where the
file system supports it (NFSv4, Lustre with ``flock``); the host in the file
tells who holds it.
"""
import fcntl
import json
import logging
import os
import os.path as osp
import socket
import sys
import time
from typing import Optional

from mmengine.logging import print_log

LOCK_NAME = 'run.lock'


class WorkDirLockedError(RuntimeError):
    """The work dir is held by another run (the message names it)."""


def _describe(info: dict) -> str:
    return (f'pid {info.get("pid")} on host {info.get("host")}, started '
            f'{info.get("start_time")}'
            + (f': {info["command"]}' if info.get('command') else ''))


def _read_info(fd: int) -> Optional[dict]:
    os.lseek(fd, 0, os.SEEK_SET)
    data = b''
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    if not data.strip():
        return None
    try:
        info = json.loads(data.decode('utf-8', 'replace'))
    except ValueError:
        return {'pid': '?', 'host': '?', 'start_time': '?',
                'command': f'unreadable lock file content {data[:80]!r}'}
    return info if isinstance(info, dict) else None


class WorkDirLock:
    """The lock of one work dir; :meth:`acquire` it, :meth:`release` it
    when the run ends (also usable as a context manager)."""

    def __init__(self, work_dir: str) -> None:
        self.work_dir = osp.abspath(work_dir)
        self.path = osp.join(self.work_dir, LOCK_NAME)
        self._fd: Optional[int] = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> 'WorkDirLock':
        """Take the lock or raise :class:`WorkDirLockedError` naming the run
        holding it."""
        if self._fd is not None:
            return self
        os.makedirs(self.work_dir, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                info = _read_info(fd) or {}
                os.close(fd)
                raise WorkDirLockedError(
                    f'work dir {self.work_dir} is in use by another run '
                    f'({_describe(info)}; lock file {self.path}); one run '
                    'per work dir: wait for it to end or choose another '
                    '--work-dir') from None
            except BaseException:
                os.close(fd)
                raise
            # the holder may have removed the file between our open and
            # flock: then we hold a lock on a file that no longer has
            # this name, start again
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _read_info(fd)
        if previous is not None:
            print_log(
                f'work dir {self.work_dir}: taking over the lock left by a '
                f'run that ended without releasing it ({_describe(previous)})'
                '; its files stay as they were', logger='current',
                level=logging.WARNING)
        info = dict(pid=os.getpid(), host=socket.gethostname(),
                    start_time=time.strftime('%Y-%m-%d %H:%M:%S %z'),
                    command=' '.join(sys.argv))
        data = (json.dumps(info) + '\n').encode('utf-8')
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, data)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file and release the lock (no-op if not held)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)  # releases the flock

    def __enter__(self) -> 'WorkDirLock':
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
