"""ClassCountCheckHook: the head's num_classes must equal the number of the
dataset's classes; the error names both counts, the classes and the file."""
import os.path as osp
from types import SimpleNamespace

import pytest
from mmdet.registry import DATASETS, HOOKS, MODELS
from mmengine.config import Config

from damoyolo_mm.datasets import coco_subset
from damoyolo_mm.engine.hooks import ClassCountMismatchError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLASSES = ('disk', 'triangle', 'cross')


def _dataset(demo_data_root, tmp_path, wrapped):
    ann = str(tmp_path / 'shapes3_val.json')
    coco_subset(demo_data_root + 'annotations/instances_val.json', ann,
                CLASSES)
    cfg = dict(
        type='DAMOYOLOCocoDataset',
        data_root=demo_data_root,
        ann_file=ann,
        data_prefix=dict(img='val/'),
        metainfo=dict(classes=CLASSES),
        pipeline=[])
    if wrapped:
        cfg = dict(type='MultiImageMixDataset', dataset=cfg, pipeline=[])
    return DATASETS.build(cfg), ann


def _model(num_classes):
    cfg = Config.fromfile(osp.join(REPO, 'configs',
                                   'damoyolo_ns_coco.py')).model
    cfg.bbox_head.num_classes = num_classes
    return MODELS.build(cfg)


def test_mismatch_names_counts_classes_and_file(demo_data_root, tmp_path):
    train_set, ann = _dataset(demo_data_root, tmp_path, wrapped=True)
    val_set, _ = _dataset(demo_data_root, tmp_path, wrapped=False)
    hook = HOOKS.build(dict(type='ClassCountCheckHook'))
    loader = SimpleNamespace
    runner = SimpleNamespace(
        model=_model(80),
        train_dataloader=loader(dataset=train_set),
        val_dataloader=loader(dataset=val_set),
        test_dataloader=loader(dataset=val_set))
    for stage, split in ((hook.before_train, 'train'),
                         (hook.before_val, 'val'),
                         (hook.before_test, 'test')):
        with pytest.raises(ClassCountMismatchError) as err:
            stage(runner)
        text = str(err.value)
        assert text.startswith('model.bbox_head.num_classes is 80'), text
        assert f'the {split} dataset ({ann}) has 3 classes' in text
        assert "('disk', 'triangle', 'cross')" in text
        assert f'and the annotation file {ann} declares 3 categories' in text
        assert 'num_classes=len(metainfo["classes"])' in text
    # matching counts pass
    runner.model = _model(3)
    hook.before_train(runner)
    hook.before_val(runner)
    hook.before_test(runner)
