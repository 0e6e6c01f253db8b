"""DAMOYOLOMosaic's own mosaic of stretched images equals mmdet's
Mosaic.transform on the same inputs and random draws."""
import copy

import numpy as np
import pytest
from mmdet.datasets.transforms import Mosaic
from mmdet.structures.bbox import HorizontalBoxes

from damoyolo_mm.datasets.transforms import DAMOYOLOMosaic
from damoyolo_mm.datasets.transforms.mix_transforms import _stretch


def _sample(rng, h, w, n):
    xy = rng.uniform(0, [w * .8, h * .8], size=(n, 2))
    wh = rng.uniform(2, [w * .5, h * .5], size=(n, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    return dict(img=rng.integers(0, 255, (h, w, 3), dtype=np.uint8),
                img_shape=(h, w),
                gt_bboxes=HorizontalBoxes(boxes),
                gt_bboxes_labels=rng.integers(0, 5, n),
                gt_ignore_flags=np.zeros(n, dtype=bool))


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_stretched_mosaic_equals_mmdet(seed):
    rng = np.random.default_rng(seed)
    results = _sample(rng, 96, 80, 3)
    results['mix_results'] = [_sample(rng, 64, 64, n) for n in (0, 4, 2)]
    t = DAMOYOLOMosaic(img_scale=(64, 48), pad_val=114.0)
    # mmdet's transform on the inputs stretched the same way
    ref_in = copy.deepcopy(results)
    _stretch(ref_in, t.img_scale)
    for mix in ref_in['mix_results']:
        _stretch(mix, t.img_scale)
    np.random.seed(seed)
    ref = Mosaic.transform(t, ref_in)
    np.random.seed(seed)
    ours = t.transform(copy.deepcopy(results))
    assert ours['img'].shape == (96, 128, 3)
    np.testing.assert_array_equal(ours['img'], ref['img'])
    np.testing.assert_array_equal(ours['gt_bboxes'].numpy(),
                                  ref['gt_bboxes'].numpy())
    np.testing.assert_array_equal(ours['gt_bboxes_labels'],
                                  ref['gt_bboxes_labels'])
    np.testing.assert_array_equal(ours['gt_ignore_flags'],
                                  ref['gt_ignore_flags'])
    assert len(ours['gt_bboxes']) > 0
