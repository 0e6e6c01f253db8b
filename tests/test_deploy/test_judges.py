"""The helpers that the deployment tests use as their judge:
``match_detections`` (one-to-one matching of two detection sets) and the
reference NMS of ``deploy_helpers``."""
import numpy as np
import pytest
from deploy_helpers import reference_nms

from damoyolo_mm.deploy import match_detections


def _dets(boxes, scores, labels):
    return dict(bboxes=np.asarray(boxes, np.float32).reshape(-1, 4),
                scores=np.asarray(scores, np.float32),
                labels=np.asarray(labels, np.int64))


BASE = _dets([[0, 0, 10, 10], [5, 5, 20, 20], [30, 30, 40, 50],
              [0, 0, 10, 10]], [0.9, 0.8, 0.5, 0.4], [1, 2, 1, 3])


def test_identical_sets_in_any_order_match():
    order = [2, 0, 3, 1]
    b = {k: v[order] for k, v in BASE.items()}
    un_a, un_b, db, ds = match_detections(BASE, b, 0., 0.)
    assert un_a == [] and un_b == [] and db == 0. and ds == 0.


def test_tolerances_are_inclusive_and_reported():
    b = {k: v.copy() for k, v in BASE.items()}
    b['bboxes'][1, 2] += 0.5
    b['scores'][2] -= 0.125
    un_a, un_b, db, ds = match_detections(BASE, b, 0.5, 0.125)
    assert un_a == [] and un_b == []
    assert db == pytest.approx(0.5) and ds == pytest.approx(0.125)
    # just outside either tolerance: that pair is unmatched on both sides
    un_a, un_b, _, _ = match_detections(BASE, b, 0.49, 0.125)
    assert un_a == [1] and un_b == [1]
    un_a, un_b, _, _ = match_detections(BASE, b, 0.5, 0.12)
    assert un_a == [2] and un_b == [2]


def test_label_must_agree():
    b = {k: v.copy() for k, v in BASE.items()}
    b['labels'][0] = 7
    un_a, un_b, _, _ = match_detections(BASE, b, 1., 1.)
    assert un_a == [0] and un_b == [0]


def test_matching_is_one_to_one_and_prefers_the_closest_box():
    a = _dets([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.9], [0, 0])
    b = _dets([[0, 0, 10, 10.2]], [0.9], [0])
    un_a, un_b, _, _ = match_detections(a, b, 1., 0.)
    assert len(un_a) == 1 and un_b == []
    b = _dets([[0, 0, 10, 10.4], [0, 0, 10, 10.1], [50, 50, 60, 60]],
              [0.9, 0.9, 0.9], [0, 0, 0])
    one = _dets([[0, 0, 10, 10]], [0.9], [0])
    un_a, un_b, db, _ = match_detections(one, b, 1., 0.)
    assert un_a == [] and un_b == [0, 2]
    assert db == pytest.approx(0.1, abs=1e-6)


def test_empty_sets():
    empty = _dets(np.zeros((0, 4)), [], [])
    assert match_detections(empty, empty, 1., 1.) == ([], [], 0., 0.)
    un_a, un_b, _, _ = match_detections(BASE, empty, 1., 1.)
    assert un_a == [0, 1, 2, 3] and un_b == []
    un_a, un_b, _, _ = match_detections(empty, BASE, 1., 1.)
    assert un_a == [] and un_b == [0, 1, 2, 3]


def test_reference_nms_rules():
    boxes = np.array([
        [0, 0, 10, 10],  # 0
        [1, 0, 11, 10],  # 1: IoU 9/11 = 0.82 with 0
        [1, 0, 11, 20],  # 2: IoU 0.5 with 1 (= threshold: kept)
        [50, 50, 60, 60],  # 3
        [50, 50, 60, 60],  # 4: same box and score as 3
    ], np.float32)
    scores = np.zeros((5, 2), np.float32)
    scores[:, 0] = [0.9, 0.95, 0.6, 0.7, 0.7]
    scores[0, 1] = 0.8  # another class: not suppressed by class 0
    scores[3, 1] = 0.05  # not above the score threshold
    out = reference_nms(boxes, scores, score_thr=0.05, iou_thr=0.5,
                        max_per_img=10)
    # class 0: 1 (0.95) suppresses 0; 2 kept (IoU with 1 is 0.5, not
    # > 0.5); of the tied 3 and 4 the lower index is kept
    np.testing.assert_allclose(out['scores'], [0.95, 0.8, 0.7, 0.6])
    np.testing.assert_array_equal(out['labels'], [0, 1, 0, 0])
    np.testing.assert_array_equal(out['bboxes'], boxes[[1, 0, 3, 2]])
    capped = reference_nms(boxes, scores, 0.05, 0.5, max_per_img=2)
    np.testing.assert_allclose(capped['scores'], [0.95, 0.8])
    per_class = reference_nms(boxes, scores, 0.05, 0.5, 10, max_per_class=1)
    np.testing.assert_array_equal(per_class['labels'], [0, 1])
    none = reference_nms(boxes, scores, 0.99, 0.5, 10)
    assert none['bboxes'].shape == (0, 4) and len(none['scores']) == 0
