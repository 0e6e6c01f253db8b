"""Feed the training progress to the SADA transforms of the train set."""
from typing import Iterable, List

from mmdet.registry import HOOKS
from mmengine.hooks import Hook

from damoyolo_mm.datasets.transforms.sada import SADA


def find_sada_transforms(dataset) -> List[SADA]:
    """All :class:`SADA` transforms reachable from ``dataset``.

    Looks through dataset wrappers (``.dataset``, ``.datasets``), their
    ``pipeline`` (a list or a ``Compose``) and nested ``transforms`` lists
    (``Compose``, ``RandomApply``, ...).
    """
    found: List[SADA] = []
    seen = set()

    def visit(obj, depth=0):
        if obj is None or id(obj) in seen or depth > 8:
            return
        seen.add(id(obj))
        if isinstance(obj, SADA):
            found.append(obj)
            return
        if isinstance(obj, (list, tuple)):
            for item in obj:
                visit(item, depth + 1)
            return
        for attr in ('pipeline', 'transforms', 'dataset', 'datasets'):
            child = getattr(obj, attr, None)
            if child is None:
                continue
            if not isinstance(child, (list, tuple)) and isinstance(
                    child, Iterable) and attr in ('pipeline', 'transforms'):
                child = list(child)
            visit(child, depth + 1)

    visit(dataset)
    return found


@HOOKS.register_module()
class SADAProgressHook(Hook):
    """Set ``progress = iter / max_iters`` on every SADA transform.

    DAMO-YOLO scales the probabilities of its box-level augmentation by the
    fraction of training done (0 at the first iteration, 1 at the end, the
    no-augmentation tail included). The value lives in shared memory, so the
    data loader workers (also persistent ones) see it without a restart.
    Transforms are looked up again at every epoch, so a pipeline replaced by
    ``PipelineSwitchHook`` is followed (this hook runs after it).
    """

    priority = 'LOW'

    def __init__(self) -> None:
        self._transforms: List[SADA] = []

    def _update(self, runner) -> None:
        if not self._transforms:
            return
        max_iters = max(int(runner.max_iters), 1)
        progress = min(max(runner.iter / max_iters, 0.), 1.)
        for t in self._transforms:
            t.set_progress(progress)

    def before_train_epoch(self, runner) -> None:
        """Collect the SADA transforms of the train set."""
        self._transforms = find_sada_transforms(
            runner.train_dataloader.dataset)
        self._update(runner)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        """Publish the progress of this iteration."""
        self._update(runner)
