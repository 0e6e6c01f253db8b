"""Let the runner load official DAMO-YOLO checkpoints (``load_from``)."""
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from damoyolo_mm.models.detectors import DAMOYOLO
from damoyolo_mm.models.checkpoint import (coco_dataset_meta,
                                           convert_official_in_place,
                                           is_official_checkpoint)


@HOOKS.register_module()
class OfficialCheckpointHook(Hook):
    """Convert an official checkpoint in memory as soon as the runner loads it.

    The detector converts an official checkpoint itself when it is loaded
    into it (``DAMOYOLO._load_from_state_dict``), but mmengine's
    ``Runner.load_checkpoint`` first hands the raw checkpoint to every
    hook's ``after_load_checkpoint``, and ``EMAHook`` reads
    ``checkpoint['state_dict']``, which an official file
    (``{'model': ...}``) does not have. With a higher priority than the EMA
    hook, this hook rewrites the loaded checkpoint in place into the
    mmengine layout (``state_dict`` with our keys, ``meta.dataset_meta``
    with the COCO classes) using the same converter as
    ``tools/convert_official.py``; every other checkpoint is left as is.
    """

    priority = 'VERY_HIGH'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not is_official_checkpoint(checkpoint):
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not isinstance(model, DAMOYOLO):
            return  # e.g. a distiller: its own loading reports the layout
        state = dict(checkpoint)
        convert_official_in_place(state)
        checkpoint.clear()
        checkpoint.update(
            state_dict=state,
            meta=dict(dataset_meta=coco_dataset_meta(),
                      source_format='official DAMO-YOLO'))
