"""Refuse a run whose head predicts another number of classes than the
dataset declares (e.g. a config that changed the classes but not
``num_classes``). Every DAMO-YOLO config runs the check
(``default_hooks.class_count_check`` in configs/_base_/default_runtime.py).
"""
import json
from typing import List, Optional

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper


class ClassCountMismatchError(ValueError):
    """The model's ``num_classes`` and the dataset's classes disagree."""


def _ann_file(dataset) -> Optional[str]:
    """The annotation file of ``dataset`` or of the dataset it wraps."""
    while dataset is not None:
        ann_file = getattr(dataset, 'ann_file', None)
        if ann_file:
            return str(ann_file)
        dataset = getattr(dataset, 'dataset', None)
    return None


def _file_categories(dataset, ann_file: Optional[str]) -> Optional[List]:
    """Category names of the annotation file: recorded by
    ``DAMOYOLOCocoDataset`` when it loaded the file, else read from a COCO
    JSON file (only to word an error)."""
    while dataset is not None:
        names = getattr(dataset, 'file_categories', None)
        if names is not None:
            return list(names)
        dataset = getattr(dataset, 'dataset', None)
    if not ann_file or not str(ann_file).endswith('.json'):
        return None
    try:
        with open(ann_file, encoding='utf-8') as f:
            return [c.get('name') for c in json.load(f).get('categories', [])]
    except (OSError, ValueError, AttributeError):
        return None


def check_class_count(model, dataset, split: str) -> None:
    """Raise :class:`ClassCountMismatchError` when a module of ``model``
    with an integer ``num_classes`` (the detection head) disagrees with
    ``dataset.metainfo['classes']``; one message names the module's count,
    the classes of ``metainfo`` and the categories of the annotation
    file."""
    if is_model_wrapper(model):
        model = model.module
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
    if classes is None:
        return
    for name, module in model.named_modules():
        num_classes = getattr(module, 'num_classes', None)
        if not isinstance(num_classes, int) or isinstance(num_classes, bool):
            continue
        if num_classes != len(classes):
            ann_file = _ann_file(dataset)
            where = ann_file or type(dataset).__name__
            cats = _file_categories(dataset, ann_file)
            in_file = ('' if cats is None else
                       f', and the annotation file {ann_file} declares '
                       f'{len(cats)} categories')
            raise ClassCountMismatchError(
                f'model.{name}.num_classes is {num_classes}, but the {split} '
                f'dataset ({where}) has {len(classes)} classes in '
                f'metainfo["classes"]: {tuple(classes)}{in_file}; set '
                f'model.{name}.num_classes=len(metainfo["classes"]) in the '
                'config')


@HOOKS.register_module()
class ClassCountCheckHook(Hook):
    """Check ``num_classes`` of the model against the classes of the train,
    val and test datasets before each of these loops starts (the datasets
    are built then; the check runs after ``load_from`` was loaded).

    mmdet's ``NumClassCheckHook`` does the same with an ``assert`` that
    names neither the annotation file nor the fix.
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        check_class_count(runner.model, runner.train_dataloader.dataset,
                          'train')

    def before_val(self, runner) -> None:
        check_class_count(runner.model, runner.val_dataloader.dataset, 'val')

    def before_test(self, runner) -> None:
        check_class_count(runner.model, runner.test_dataloader.dataset,
                          'test')
