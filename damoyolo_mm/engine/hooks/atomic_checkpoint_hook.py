"""Crash-safe checkpoints: mmengine's CheckpointHook, written atomically.

Workaround for mmengine 0.10.7's ``CheckpointHook``, which

* removes the oldest checkpoint (``max_keep_ckpts``) and the previous best
  checkpoint *before* writing the new one,
* writes checkpoints straight to their final name (``LocalBackend.put``
  opens the file with ``'wb'``), and
* rewrites ``last_checkpoint`` in place.

A kill in between (with ``max_keep_ckpts=1``: any kill during the save)
leaves a truncated ``epoch_N.pth``, a ``last_checkpoint`` naming a deleted
file, and no checkpoint to ``--resume`` from.

:class:`AtomicCheckpointHook` takes the same arguments and writes the same
files. For a local ``out_dir`` every file is written to a temporary name in
the same folder, flushed to disk and renamed into place (``os.replace``);
``last_checkpoint`` is updated only after the checkpoint is complete, and
outdated checkpoints are removed only after that. So ``last_checkpoint``
always names a complete file and ``--resume`` after a kill -9 at any moment
continues from the last complete checkpoint.

Two more checks on every save:

* the message hub is saved without ``HistoryBuffer``'s pickled statistics
  methods (``builtins.getattr``), so the file loads with
  ``torch.load(weights_only=True)`` and the allow-list of
  :mod:`damoyolo_mm.compat`;
* non-finite weights are never written: the save raises instead
  (a diverged run must not leave a poisoned checkpoint behind).
"""
import contextlib
import copy
import copyreg
import functools
import os
import os.path as osp

import torch
from mmdet.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook
from mmengine.logging import HistoryBuffer

from damoyolo_mm.models.finite_check import NonFiniteLossError
from damoyolo_mm.utils.fileio import atomic_open

#: name of the file backend registered with mmengine for atomic local writes
ATOMIC_BACKEND = 'damoyolo_atomic_local'
_TMP_TAG = '.partial-'


def atomic_write(data: bytes, path: str) -> None:
    """Write ``data`` to ``path`` atomically; the temporary name carries
    ``_TMP_TAG`` so that ``before_train`` removes leftovers of a kill."""
    with atomic_open(path, 'wb', prefix=f'.{osp.basename(path)}{_TMP_TAG}',
                     suffix='.tmp') as f:
        f.write(data)


@register_backend(ATOMIC_BACKEND)
class AtomicLocalBackend(LocalBackend):
    """mmengine's :class:`LocalBackend` whose ``put`` / ``put_text`` write
    through a temporary file and an atomic rename."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write(obj, str(filepath))

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write(obj.encode(encoding), str(filepath))


def _reduce_history_buffer(state: dict, protocol: int):
    return copyreg.__newobj__, (HistoryBuffer, ), state


def _plain_history_buffer(buffer: HistoryBuffer) -> HistoryBuffer:
    """A copy of ``buffer`` that pickles without its statistics methods
    (``HistoryBuffer.__setstate__`` restores the default ones on load)."""
    state = {k: v for k, v in vars(buffer).items()
             if k != 'statistics_methods'}
    plain = HistoryBuffer.__new__(HistoryBuffer)
    plain.__dict__.update(copy.copy(state))
    # looked up on the instance by the pickler
    plain.__reduce_ex__ = functools.partial(_reduce_history_buffer, state)
    return plain


def _non_finite_keys(state_dict) -> list:
    return [k for k, v in state_dict.items()
            if torch.is_tensor(v) and v.is_floating_point()
            and not bool(torch.isfinite(v).all())]


class _DeferredRemoval:
    """Stands in for the hook's file backend: ``remove`` / ``rmtree`` are
    recorded and run only after the new checkpoint is complete."""

    def __init__(self, backend) -> None:
        self._backend = backend
        self.pending = []

    def remove(self, path) -> None:
        self.pending.append(('remove', path))

    def rmtree(self, path) -> None:
        self.pending.append(('rmtree', path))

    def __getattr__(self, name):
        return getattr(self._backend, name)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """:class:`mmengine.hooks.CheckpointHook` with crash-safe saving.

    Same arguments and files as mmengine's hook (see the module doc for what
    differs). Atomic writes apply to local output folders without custom
    ``backend_args``; other storage keeps mmengine's behaviour, with the
    deferred removal of outdated checkpoints.
    """

    def before_train(self, runner) -> None:
        local = self.file_client_args is None and self.backend_args is None \
            and '://' not in str(self.out_dir or runner.work_dir)
        if local:
            self.backend_args = dict(backend=ATOMIC_BACKEND)
        super().before_train(runner)
        if local and is_main_process():
            # temporaries of a save that was killed before its rename
            for name in os.listdir(self.out_dir) if osp.isdir(
                    self.out_dir) else []:
                if name.startswith('.') and _TMP_TAG in name and \
                        name.endswith('.tmp'):
                    os.remove(osp.join(self.out_dir, name))

    @contextlib.contextmanager
    def _removals_after_save(self):
        backend = self.file_backend
        deferred = _DeferredRemoval(backend)
        self.file_backend = deferred
        try:
            yield
        finally:
            self.file_backend = backend
        # reached only when the save succeeded
        if is_main_process():
            for method, path in deferred.pending:
                if method == 'remove' and backend.isfile(path):
                    backend.remove(path)
                elif method == 'rmtree' and backend.isdir(path):
                    backend.rmtree(path)

    def _save_checkpoint_with_step(self, runner, step, meta):
        """mmengine 0.10.7's method in a safe order: record the kept
        steps, write the checkpoint, then ``last_checkpoint`` (both
        atomically), then remove the outdated checkpoint."""
        with self._removals_after_save():
            if self.max_keep_ckpts > 0 and not (
                    self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
                if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                    old = self.keep_ckpt_ids.popleft()
                    if is_main_process():
                        path = self.file_backend.join_path(
                            self.out_dir, self.filename_tmpl.format(old))
                        self.file_backend.remove(path)  # deferred
                self.keep_ckpt_ids.append(step)
                runner.message_hub.update_info('keep_ckpt_ids',
                                               list(self.keep_ckpt_ids))
            ckpt_filename = self.filename_tmpl.format(step)
            self.last_ckpt = self.file_backend.join_path(
                self.out_dir, ckpt_filename)
            runner.message_hub.update_info('last_ckpt', self.last_ckpt)
            runner.save_checkpoint(
                self.out_dir,
                ckpt_filename,
                self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=meta,
                by_epoch=self.by_epoch,
                backend_args=self.backend_args,
                **self.args)
            if is_main_process():
                atomic_write(
                    str(self.last_ckpt).encode(),
                    osp.join(runner.work_dir, 'last_checkpoint'))

    def _save_best_checkpoint(self, runner, metrics) -> None:
        with self._removals_after_save():
            super()._save_best_checkpoint(runner, metrics)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Refuse non-finite weights; drop pickled methods from the hub."""
        for key in ('state_dict', 'ema_state_dict'):
            bad = _non_finite_keys(checkpoint.get(key, {}))
            if bad:
                raise NonFiniteLossError(
                    f'not saving a checkpoint at iteration {runner.iter}: '
                    f'{len(bad)} tensors of {key} are not finite (e.g. '
                    f'{", ".join(bad[:3])}); the training diverged. Lower '
                    'the learning rate (optim_wrapper.optimizer.lr) or check '
                    'the data')
        hub = checkpoint.get('message_hub')
        if isinstance(hub, dict) and isinstance(hub.get('log_scalars'),
                                                dict):
            hub['log_scalars'] = type(hub['log_scalars'])(
                (k, _plain_history_buffer(v)
                 if isinstance(v, HistoryBuffer) else v)
                for k, v in hub['log_scalars'].items())
