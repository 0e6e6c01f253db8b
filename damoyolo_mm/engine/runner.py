"""The runner of the DAMO-YOLO configs (``runner_type = 'DAMOYOLORunner'``
in ``configs/_base_/default_runtime.py``): mmengine's ``Runner`` that trains
only in a work dir no other training holds.

``Runner.__init__`` dumps the config into the work dir; here the dump waits
until :meth:`train` holds the work dir lock (:mod:`.work_dir_lock`), so a
second run into a held work dir stops before it writes anything there but
its own timestamped log folder. ``test`` / ``val`` take no lock (evaluating
a checkpoint while its training runs is fine) and dump the config as
mmengine does.

Distributed: only rank 0 takes the lock; its outcome is broadcast, so every
rank stops when it is held (no rank waits in a collective for one that
stopped).
"""
from typing import Optional

from mmengine.dist import broadcast_object_list, get_dist_info
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .work_dir_lock import WorkDirLock, WorkDirLockedError


@RUNNERS.register_module()
class DAMOYOLORunner(Runner):
    """mmengine's ``Runner`` with one training run per work dir (see the
    module's docstring). Same arguments."""

    def __init__(self, *args, **kwargs) -> None:
        self._defer_config_dump = True
        self._work_dir_lock: Optional[WorkDirLock] = None
        super().__init__(*args, **kwargs)

    def dump_config(self) -> None:
        """Dump the config; the call of ``Runner.__init__`` is deferred to
        :meth:`train` / :meth:`test` / :meth:`val`."""
        if getattr(self, '_defer_config_dump', False):
            return
        super().dump_config()

    def _dump_config_now(self) -> None:
        self._defer_config_dump = False
        self.dump_config()

    def _lock_work_dir(self) -> None:
        rank, world_size = get_dist_info()
        error = None
        if rank == 0:
            lock = WorkDirLock(self.work_dir)
            try:
                self._work_dir_lock = lock.acquire()
            except WorkDirLockedError as e:
                error = str(e)
            except OSError as e:  # e.g. a read-only work dir: every rank
                error = f'cannot take the lock {lock.path}: {e}'  # stops
        if world_size > 1:
            outcome = [error]
            broadcast_object_list(outcome, src=0)
            error = outcome[0]
        if error is not None:
            if rank != 0:
                error = f'rank {rank} stops: {error}'
            raise WorkDirLockedError(error)

    def train(self):
        self._lock_work_dir()
        try:
            self._dump_config_now()
            return super().train()
        finally:
            if self._work_dir_lock is not None:
                self._work_dir_lock.release()
                self._work_dir_lock = None

    def val(self):
        self._dump_config_now()
        return super().val()

    def test(self):
        self._dump_config_now()
        return super().test()
