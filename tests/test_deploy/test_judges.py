"""The helpers that the deployment tests use as their judge:
``match_detections`` (one-to-one matching of two detection sets) and the
reference NMS of ``deploy_helpers``."""
import numpy as np
import pytest
from deploy_helpers import reference_nms
from detection_judge import (as_dets, assert_same_detections,
                             compare_detections, determined, determined_kept,
                             match)

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


# --- tests/detection_judge.py: which detections the raw outputs determine

CFG = dict(score_thr=0.05, nms=dict(iou_threshold=0.5), max_per_img=100)


def _scene(seed=0, n=60, num_classes=3):
    """Random boxes of a few sizes and well separated scores."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 200, (n, 2))
    wh = rng.uniform(10, 40, (n, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = np.zeros((n, num_classes), np.float32)
    scores[np.arange(n), rng.integers(0, num_classes, n)] = rng.permutation(
        np.linspace(0.1, 0.95, n))
    return boxes, scores


def _nms(boxes, scores, cfg=CFG):
    return reference_nms(boxes, scores, cfg['score_thr'],
                         cfg['nms']['iou_threshold'], cfg['max_per_img'])


def test_judge_separated_scores_are_all_determined():
    boxes, scores = _scene()
    d = _nms(boxes, scores)
    r = compare_detections(d, d, [(boxes, scores)], CFG, 1e-5, 1e-3)
    assert r['determined_a'] == r['determined_b'] == 1.
    assert r['unmatched_a'] == r['unmatched_b'] == []


def test_judge_excuses_a_near_tie_flip_and_only_that():
    """Two overlapping boxes of one class 1e-7 apart: rounding decides which
    survives NMS. Only the pair (and what lies below it in its class) is
    left out; everything else must still match."""
    boxes, scores = _scene()
    boxes = np.concatenate([boxes, boxes[:1] + 1.]).astype(np.float32)
    label = int(scores[0].argmax())
    twin = np.zeros((1, scores.shape[1]), np.float32)
    twin[0, label] = scores[0, label] - 1e-7
    scores = np.concatenate([scores, twin])
    flipped = scores.copy()
    flipped[-1, label] += 2e-7  # the twin now wins
    a, b = _nms(boxes, scores), _nms(boxes, flipped)
    assert len(match(as_dets(a), as_dets(b), 1e-3, 1e-6)[0]) >= 1
    r = compare_detections(a, b, [(boxes, scores), (boxes, flipped)], CFG,
                           1e-6, 1e-3)
    assert r['unmatched_a'] == r['unmatched_b'] == []
    assert 0.5 < r['determined_a'] < 1.
    # detections of the other classes are all determined
    other = as_dets(a)['labels'] != label
    kept = determined_kept(boxes, scores, 0.05, 0.5, 1e-6, 1e-3)
    mask = determined(as_dets(a), kept, -np.inf, 1e-6, 1e-3)
    assert mask[other].all()
    # of the flipped pair's class, only the pair's survivor is left out
    assert (~mask).sum() == 1
    assert as_dets(a)['scores'][~mask][0] == pytest.approx(scores[0, label])


def test_judge_catches_a_wrong_nms_threshold():
    boxes, scores = _scene(1, n=120)
    a = _nms(boxes, scores)
    b = _nms(boxes, scores, dict(CFG, nms=dict(iou_threshold=0.3)))
    with pytest.raises(AssertionError, match='without a partner'):
        assert_same_detections(a, b, [(boxes, scores)], CFG, 1e-5, 1e-3,
                               min_determined=0.9)


def test_judge_catches_a_moved_box_and_a_changed_score():
    boxes, scores = _scene(2)
    a = _nms(boxes, scores)
    for key, delta in (('bboxes', 0.01), ('scores', 1e-4)):
        b = {k: v.copy() for k, v in a.items()}
        b[key][3] += delta
        r = compare_detections(a, b, [(boxes, scores)], CFG, 1e-5, 1e-3)
        assert r['unmatched_a'] == [3] and r['unmatched_b'] == [3], key


def test_judge_iou_at_the_threshold_is_undetermined():
    """Box 1 overlaps box 0 with IoU 0.5 exactly: a rounding of the boxes
    decides whether it is suppressed, and so whether box 3 (which box 1
    would suppress, box 0 not) survives; box 2 is decided either way."""
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 20], [50, 50, 60, 60],
                      [0, 8, 10, 22]], np.float32)
    scores = np.array([[0.9], [0.8], [0.3], [0.2]], np.float32)

    def mask():
        kept = determined_kept(boxes, scores, 0.05, 0.5, 1e-6, 1e-3)
        return determined(as_dets(_nms(boxes, scores)), kept, -np.inf,
                          1e-6, 1e-3)

    d = as_dets(_nms(boxes, scores))
    np.testing.assert_allclose(d['scores'], [0.9, 0.8, 0.3])
    np.testing.assert_array_equal(mask(), [True, False, True])
    # far from the threshold (IoU 0.33) everything is determined (box 3
    # is then kept too: IoU 0.47 with box 1)
    boxes[1, 3] = 30
    assert mask().all() and len(mask()) == 4
    # a candidate at the score threshold comes and goes (last by score)
    scores[2, 0] = 0.05 + 5e-7
    np.testing.assert_array_equal(mask(), [True, True, True, False])


def test_judge_max_per_img_cut():
    """A full side was cut at its lowest score: detections at the cut are
    undetermined, and a flip above the cut that pushes a detection out of
    the other side is excused."""
    boxes, scores = _scene(3, n=40)
    cfg = dict(CFG, max_per_img=10)
    a = as_dets(_nms(boxes, scores, cfg))
    assert len(a['scores']) == 10
    r = compare_detections(a, a, [(boxes, scores)], cfg, 1e-6, 1e-3)
    assert r['determined_a'] == pytest.approx(0.9)
    # the other side has one more detection above a's 10th (a near-tie
    # partner that survived there), so its 10th is a's 9th
    b = {k: np.concatenate([v[:3], v[2:3], v[3:9]]) for k, v in a.items()}
    b['bboxes'][3] += 0.5
    b['scores'][3] -= 1e-7
    boxes_b = np.concatenate([boxes, b['bboxes'][3:4]])
    twin = np.zeros((1, scores.shape[1]), np.float32)
    twin[0, b['labels'][3]] = b['scores'][3]
    scores_b = np.concatenate([scores, twin])
    r = compare_detections(a, b, [(boxes_b, scores_b)], cfg, 1e-6, 1e-3)
    assert r['unmatched_a'] == r['unmatched_b'] == []
    # the cut of b (a's 9th score) leaves a's 9th and 10th undetermined


def test_judge_guards_its_strength():
    """When almost nothing is determined the assertion says so instead of
    passing on nothing."""
    boxes = np.tile(np.array([[0, 0, 10, 10]], np.float32), (20, 1))
    boxes[:, 2] += np.arange(20) * 0.01
    scores = np.full((20, 1), 0.5, np.float32)
    scores[:, 0] += np.arange(20) * 1e-8
    d = _nms(boxes, scores)
    with pytest.raises(AssertionError, match='determined'):
        assert_same_detections(d, d, [(boxes, scores)], CFG, 1e-6, 1e-3,
                               min_determined=0.5)
