"""DAMOYOLOMixDataset: mmdet's MultiImageMixDataset without deep copies for
the recipe's transforms, mmdet's copies and refetching for others."""
import random

import numpy as np
import pytest
import torch
from mmcv.transforms import BaseTransform
from mmdet.datasets import MultiImageMixDataset
from mmdet.registry import TRANSFORMS

from damoyolo_mm.datasets import DAMOYOLOMixDataset

CLASSES = ('disk', 'rectangle', 'triangle', 'ring', 'cross')


def _cfg(root, pipeline):
    return dict(
        dataset=dict(
            type='DAMOYOLOCocoDataset', data_root=root,
            ann_file='annotations/instances_train.json',
            data_prefix=dict(img='train/'), metainfo=dict(classes=CLASSES),
            filter_cfg=dict(filter_empty_gt=False, min_size=0),
            pipeline=[dict(type='LoadImageFromFile'),
                      dict(type='LoadAnnotations', with_bbox=True)]),
        pipeline=pipeline)


PIPELINE = [
    dict(type='DAMOYOLOMosaic', img_scale=(64, 64), pad_val=114.0),
    dict(type='DAMOYOLORandomAffine', img_scale=(64, 64),
         max_translate_ratio=0.2),
    dict(type='DAMOYOLOMixUp', img_scale=(64, 64), prob=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]


def _samples(dataset, n):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    out = []
    for i in range(n):
        item = dataset[i % len(dataset)]
        out.append((item['inputs'].numpy(),
                    item['data_samples'].gt_instances.bboxes.numpy(),
                    item['data_samples'].gt_instances.labels.numpy()))
    return out


@pytest.mark.parametrize('skip', [None, ['DAMOYOLOMosaic', 'DAMOYOLOMixUp']])
def test_same_output_as_mmdet(demo_data_root, skip):
    ours = DAMOYOLOMixDataset(**_cfg(demo_data_root, PIPELINE))
    ref = MultiImageMixDataset(**_cfg(demo_data_root, PIPELINE))
    if skip:
        ours.update_skip_type_keys(skip)
        ref.update_skip_type_keys(skip)
    a, b = _samples(ours, 12), _samples(ref, 12)
    assert sum(len(boxes) for _, boxes, _ in a) >= 8
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            np.testing.assert_array_equal(u, v)


@TRANSFORMS.register_module(force=True)
class _NoneOnce(BaseTransform):
    """Zeroes its input and returns None on the first call; records the
    input's maximum on the second call."""

    calls, seen_max = 0, None

    def transform(self, results):
        type(self).calls += 1
        if type(self).calls == 1:
            results['img'][:] = 0
            return None
        type(self).seen_max = int(results['img'].max())
        return results


def test_other_transforms_keep_copies_and_refetch(demo_data_root):
    _NoneOnce.calls = 0
    ds = DAMOYOLOMixDataset(**_cfg(demo_data_root, [
        dict(type='DAMOYOLOMosaic', img_scale=(64, 64)),
        dict(type='_NoneOnce')]))
    item = ds[0]
    # the retry got an untouched copy of the mosaic
    assert _NoneOnce.calls == 2 and _NoneOnce.seen_max > 0
    assert item['img'].shape == (128, 128, 3)


def test_never_none_transform_returning_none_is_named(demo_data_root):
    ds = DAMOYOLOMixDataset(**_cfg(demo_data_root, [
        dict(type='DAMOYOLOMosaic', img_scale=(64, 64))]))
    ds.pipeline[0].transform = lambda results: None
    with pytest.raises(RuntimeError, match='DAMOYOLOMosaic returned None'):
        ds[0]
