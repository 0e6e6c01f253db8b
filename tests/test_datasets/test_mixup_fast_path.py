"""DAMOYOLOMixUp's own mixing of uint8 images equals mmdet's MixUp.transform
on the same inputs and random draws."""
import copy

import numpy as np
import pytest
from mmdet.datasets.transforms import MixUp
from mmdet.structures.bbox import HorizontalBoxes

from damoyolo_mm.datasets.transforms import DAMOYOLOMixUp


def _sample(rng, h, w, n):
    xy = rng.uniform(0, [w * .8, h * .8], size=(n, 2))
    wh = rng.uniform(2, [w * .5, h * .5], size=(n, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    return dict(img=rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
                img_shape=(h, w),
                gt_bboxes=HorizontalBoxes(boxes),
                gt_bboxes_labels=rng.integers(0, 5, n),
                gt_ignore_flags=rng.random(n) < 0.2)


@pytest.mark.parametrize('seed', range(12))
def test_uint8_mixup_equals_mmdet(seed):
    rng = np.random.default_rng(seed)
    h, w = [(64, 80), (80, 64), (72, 72)][seed % 3]
    results = _sample(rng, h, w, 3)
    # mix-in images larger, smaller and of another ratio than the target
    mh, mw = [(40, 100), (130, 90), (72, 72), (50, 50)][seed % 4]
    results['mix_results'] = [_sample(rng, mh, mw, 1 + seed % 4)]
    t = DAMOYOLOMixUp(img_scale=(w, h), ratio_range=(0.5, 1.5), prob=1.,
                      pad_val=114.0 + (seed % 2), min_bbox_area=None)
    np.random.seed(seed)
    ref = MixUp.transform(t, copy.deepcopy(results))
    ref_next = np.random.rand()
    np.random.seed(seed)
    ours = t.transform(copy.deepcopy(results))
    assert np.random.rand() == ref_next  # the same number of draws
    assert ours['img'].dtype == np.uint8
    np.testing.assert_array_equal(ours['img'], ref['img'])
    np.testing.assert_array_equal(ours['gt_bboxes'].numpy(),
                                  ref['gt_bboxes'].numpy())
    np.testing.assert_array_equal(ours['gt_bboxes_labels'],
                                  ref['gt_bboxes_labels'])
    np.testing.assert_array_equal(ours['gt_ignore_flags'],
                                  ref['gt_ignore_flags'])
    assert ours['img_shape'] == ref['img_shape']
