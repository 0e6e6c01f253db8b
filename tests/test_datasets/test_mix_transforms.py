"""Mosaic / random affine / MixUp with DAMO-YOLO's semantics."""
import random

import numpy as np
import pytest
from mmdet.structures.bbox import HorizontalBoxes

from damoyolo_mm.datasets.transforms import (DAMOYOLOMixUp, DAMOYOLOMosaic,
                                             DAMOYOLORandomAffine)


def _sample(h, w, boxes, value=100):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return dict(
        img=np.full((h, w, 3), value, np.uint8),
        img_shape=(h, w),
        gt_bboxes=HorizontalBoxes(boxes),
        gt_bboxes_labels=np.arange(len(boxes), dtype=np.int64),
        gt_ignore_flags=np.zeros(len(boxes), bool))


def test_mosaic_stretches_sub_images():
    # a 100x200 (h x w) image whose box covers it; mosaic centre fixed at
    # (640, 640): stretched to 640x640 the box fills the top-left cell
    def results():
        r = _sample(100, 200, [[0, 0, 200, 100]])
        r['mix_results'] = [_sample(100, 200, [[0, 0, 200, 100]])
                            for _ in range(3)]
        return r

    ours = DAMOYOLOMosaic(img_scale=(640, 640), center_ratio_range=(1., 1.))
    out = ours(results())
    assert out['img'].shape == (1280, 1280, 3)
    np.testing.assert_allclose(out['gt_bboxes'].tensor[0].numpy(),
                               [0, 0, 640, 640])
    # keep_ratio=True is mmdet's behaviour: 640x320, the box is 320 high
    kept = DAMOYOLOMosaic(img_scale=(640, 640), center_ratio_range=(1., 1.),
                          keep_ratio=True)(results())
    np.testing.assert_allclose(kept['gt_bboxes'].tensor[0].numpy(),
                               [0, 320, 640, 640])


def test_mosaic_indexes_stay_in_range():
    t = DAMOYOLOMosaic()
    random.seed(0)
    drawn = set()
    for _ in range(300):
        drawn.update(t.get_indexes([0, 1, 2]))
    assert drawn == {0, 1, 2}


def test_affine_is_centred_on_the_input():
    t = DAMOYOLORandomAffine(
        img_scale=(640, 640), max_rotate_degree=0., max_translate_ratio=0.,
        scaling_ratio_range=(0.5, 0.5), max_shear_degree=0.)
    res = _sample(1280, 1280, [[600, 600, 680, 680], [0, 0, 100, 100]])
    res['img'][600:680, 600:680] = 255
    out = t(res)
    assert out['img'].shape == (640, 640, 3)
    # the mosaic centre (640, 640) lands at the output centre (320, 320)
    np.testing.assert_allclose(out['gt_bboxes'].tensor.numpy(),
                               [[300, 300, 340, 340], [0, 0, 50, 50]],
                               atol=1e-4)
    assert out['img'][320, 320, 0] == 255 and out['img'][280, 280, 0] == 100
    assert list(out['gt_bboxes_labels']) == [0, 1]


def test_affine_filters_boxes_like_damoyolo():
    t = DAMOYOLORandomAffine(
        img_scale=(100, 100), max_rotate_degree=0., max_translate_ratio=0.,
        scaling_ratio_range=(1., 1.), max_shear_degree=0.)
    # input 200x200 -> output shows [50, 150]^2
    boxes = [
        [60, 60, 100, 100],  # kept
        [20, 60, 54, 100],  # only 4 of 34 px visible: area ratio 0.12 kept
        [20, 60, 52, 100],  # 2 px visible: width <= 2 dropped
        [0, 60, 54, 100],  # 4 of 54 px visible: area ratio 0.07 dropped
        [60, 60, 140, 62.5],  # aspect ratio 32 dropped
    ]
    out = t(_sample(200, 200, boxes))
    assert list(out['gt_bboxes_labels']) == [0, 1]
    np.testing.assert_allclose(out['gt_bboxes'].tensor.numpy(),
                               [[10, 10, 50, 50], [0, 10, 4, 50]], atol=1e-4)


def test_affine_random_parameters_stay_in_range():
    t = DAMOYOLORandomAffine(img_scale=(320, 320), max_rotate_degree=10.,
                             max_translate_ratio=0.2,
                             scaling_ratio_range=(0.75, 1.25),
                             max_shear_degree=2.)
    random.seed(1)
    centres = []
    for _ in range(200):
        m, s = t._random_matrix(640, 640)
        assert 0.75 <= s <= 1.25
        centres.append((m @ np.array([320., 320., 1.]))[:2])
    centres = np.array(centres)
    assert centres.min() >= 0.3 * 320 - 1e-6
    assert centres.max() <= 0.7 * 320 + 1e-6


def test_mixup_probability_and_small_box_filter():
    class _Data:

        def __len__(self):
            return 4

        def get_data_info(self, i):
            return dict(instances=[dict(ignore_flag=0)] if i == 3 else [])

    never = DAMOYOLOMixUp(img_scale=(64, 64), prob=0.)
    always = DAMOYOLOMixUp(img_scale=(64, 64), prob=1., max_iters=200)
    random.seed(0)
    assert never.get_indexes(_Data()) == []
    # the image to mix in must have boxes (only index 3 has)
    assert all(always.get_indexes(_Data()) == [3] for _ in range(20))

    res = _sample(64, 64, [[0, 0, 2, 2], [10, 10, 30, 30]])
    res['mix_results'] = []
    out = never(res)
    assert list(out['gt_bboxes_labels']) == [1]  # area 4 dropped

    res = _sample(64, 64, [[10, 10, 30, 30]], value=200)
    res['mix_results'] = [_sample(64, 64, [[20, 20, 40, 40]], value=0)]
    out = always(res)
    assert len(out['gt_bboxes']) == 2
    # 50 / 50 blend of the two images where both are present
    assert abs(int(out['img'][5, 5, 0]) - 100) <= 1 or \
        abs(int(out['img'][5, 5, 0]) - 157) <= 1


def test_bad_arguments():
    with pytest.raises(ValueError):
        DAMOYOLORandomAffine(max_translate_ratio=0.7)
    with pytest.raises(ValueError):
        DAMOYOLOMixUp(prob=1.5)
