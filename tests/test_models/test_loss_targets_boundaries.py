"""Every clamp and boundary of the training targets, at the boundary.

Tiny hand-made cases (a few priors, one or two GTs) whose expected values
are worked out by hand in each docstring, for the rules of the official
DAMO-YOLO code (``damo/base_models/core/ota_assigner.py``,
``damo/base_models/heads/zero_head.py``):

- IoU: union clamped from below by 1e-6 (``bbox_overlaps``);
- cost: ``-log(IoU + 1e-7)``; candidates strictly inside a GT box or
  strictly inside its centre square of half-size 2.5 strides; +1e8 for a
  pair not inside both;
- dynamic k: ``max(1, int(sum of the top-10 candidate IoUs))``; equal costs
  taken in prior order up to k; a prior matched by more than one GT keeps
  the cheapest (the first on an exact tie), one matched by one GT keeps it;
- DFL targets: distances in strides clamped to ``[0, reg_max - 0.1]``;
- normalisers: ``max(num_pos, 1)`` and ``max(sum of weights, 1)`` (the sum
  over the processes, see :func:`global_avg_factor`).
"""
import math
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS, TASK_UTILS
from mmengine.structures import InstanceData

from damoyolo_mm.models.dense_heads import zero_head
from damoyolo_mm.models.task_modules.assigners import pairwise_iou

pytestmark = pytest.mark.usefixtures('single_thread')


def _assigner(**kwargs):
    cfg = dict(type='AlignOTAAssigner', center_radius=2.5, topk=10,
               cls_weight=1.0, iou_weight=3.0)
    cfg.update(kwargs)
    return TASK_UTILS.build(cfg)


def _assign(points, decoded, gt_boxes, gt_labels=None, scores=None,
            stride=8., **cfg):
    """One image: returns (0-based GT index or -1 per prior, IoUs)."""
    num_priors = len(points)
    pts = torch.tensor(points, dtype=torch.float32)
    priors = torch.cat([pts, torch.full_like(pts, stride)], 1)
    gt = torch.tensor(gt_boxes, dtype=torch.float32)
    labels = torch.zeros(len(gt_boxes), dtype=torch.long) \
        if gt_labels is None else torch.tensor(gt_labels)
    if scores is None:
        scores = torch.full((num_priors, 1), 0.1)
    out = _assigner(**cfg).batch_assign(
        torch.as_tensor(scores, dtype=torch.float32)[None], priors,
        torch.tensor(decoded, dtype=torch.float32)[None], gt[None],
        labels[None], torch.ones(1, len(gt_boxes), dtype=torch.bool))
    return out['gt_inds'][0].tolist(), out['ious'][0]


# ---------------------------------------------------------------------------
# IoU and cost
# ---------------------------------------------------------------------------
def test_iou_union_is_clamped_at_1e6():
    """Two identical squares: IoU 1 while the union is above 1e-6; below it,
    area / 1e-6; zero area gives 0, not NaN."""
    side = 2.**-9  # area 2^-18 = 3.8e-6 > 1e-6
    box = torch.tensor([[0., 0., side, side]])
    assert pairwise_iou(box, box).item() == 1.0
    side = 2.**-10  # area 2^-20 = 9.54e-7 < 1e-6
    box = torch.tensor([[0., 0., side, side]])
    assert pairwise_iou(box, box).item() == pytest.approx(2.**-20 / 1e-6,
                                                          rel=1e-6)
    point = torch.tensor([[3., 3., 3., 3.]])
    assert pairwise_iou(point, point).item() == 0.0
    # ordinary boxes are untouched by the clamp: 64 / (256 + 128 - 64)
    a = torch.tensor([[0., 0., 16., 16.]])
    b = torch.tensor([[8., 8., 24., 16.]])
    assert pairwise_iou(a, b).item() == torch.tensor(64 / 320).item()


def test_iou_eps_inside_the_log_is_1e7():
    """GT [0, 0, 16, 16]; two priors inside it and its centre region, one
    class; dynamic k = max(1, int(~1e-6)) = 1: the cheaper one wins.

    p0 decodes far away (IoU 0), probability 0.1: cost
      BCE(.1, 0) * .01 = 0.0011 + 3 * -ln(0 + 1e-7) = 48.355
    p1 decodes [15, 15, 1015, 1015] (IoU 1 / 1000255 = 1.0e-6), probability
    0.99: cost BCE(.99, 1e-6) * .98 = 4.513 + 3 * -ln(1.1e-6) = 45.675
    so p1 is taken. With 1e-6 inside the log p0 would cost 41.448 and p1
    43.881 (p0 taken).
    """
    gt_inds, ious = _assign([[6, 6], [10, 10]],
                            [[200, 200, 210, 210], [15, 15, 1015, 1015]],
                            [[0, 0, 16, 16]], scores=[[0.1], [0.99]])
    assert gt_inds == [-1, 0]
    assert ious[1].item() == pytest.approx(1 / 1000255, rel=1e-5)
    # the other way round once the IoU cost gap exceeds the class cost gap
    gt_inds, _ = _assign([[6, 6], [10, 10]],
                         [[200, 200, 210, 210], [15, 15, 1015, 1015]],
                         [[0, 0, 16, 16]], scores=[[0.1], [0.99]],
                         iou_eps=1e-6)
    assert gt_inds == [0, -1]


# ---------------------------------------------------------------------------
# candidates: strictly inside the box / the centre square
# ---------------------------------------------------------------------------
def test_prior_on_the_box_edge_is_not_inside():
    """GT [0, 0, 16, 16]. p0 = (0, 8) lies on the left edge (inside the
    centre square (-12, 28)^2 but not strictly inside the box), decodes to
    the GT (IoU 1); p1 = (15.5, 8) is inside both, IoU .25 ([0, 0, 16, 4]).
    k = int(1.25) = 1. p0 pays +1e8 (not in box and centre): p1 is taken."""
    decoded = [[0, 0, 16, 16], [0, 0, 16, 4]]
    gt_inds, _ = _assign([[0, 8], [15.5, 8]], decoded, [[0, 0, 16, 16]])
    assert gt_inds == [-1, 0]
    # just inside the edge, p0 is inside both and the cheaper one
    gt_inds, _ = _assign([[0.5, 8], [15.5, 8]], decoded, [[0, 0, 16, 16]])
    assert gt_inds == [0, -1]
    # the same on the right, top and bottom edges
    for edge in ([16, 8], [8, 0], [8, 16]):
        gt_inds, _ = _assign([edge, [15.5, 8]], decoded, [[0, 0, 16, 16]])
        assert gt_inds == [-1, 0], edge


def test_prior_on_the_centre_square_edge_is_not_inside():
    """GT [0, 0, 64, 16], centre (32, 8), centre square x in (12, 52) for
    stride 8. p0 = (12, 8) is in the box, on the centre edge, decodes to the
    GT; p1 = (30, 8) is inside both with IoU .25 ([0, 0, 64, 4]). k = 1:
    p1 is taken; p0 just inside (12.5) is taken instead."""
    gt = [[0, 0, 64, 16]]
    decoded = [[0, 0, 64, 16], [0, 0, 64, 4]]
    assert _assign([[12, 8], [30, 8]], decoded, gt)[0] == [-1, 0]
    assert _assign([[12.5, 8], [30, 8]], decoded, gt)[0] == [0, -1]
    assert _assign([[52, 8], [30, 8]], decoded, gt)[0] == [-1, 0]
    assert _assign([[51.5, 8], [30, 8]], decoded, gt)[0] == [0, -1]
    # the half-size is center_radius strides: 2.5 * 16 = 40 > 20
    assert _assign([[12, 8], [30, 8]], decoded, gt, stride=16.)[0] == [0, -1]


def test_candidate_region_edge():
    """A prior outside the box of a tiny GT [0, 0, 4, 4] (centre (2, 2),
    centre square (-18, 22)^2) is a candidate only strictly inside the
    square; a candidate is then taken (k >= 1) even though it pays +1e8."""
    gt = [[0, 0, 4, 4]]
    assert _assign([[22, 2]], [[0, 0, 4, 4]], gt)[0] == [-1]
    assert _assign([[21.5, 2]], [[0, 0, 4, 4]], gt)[0] == [0]
    assert _assign([[2, -18]], [[0, 0, 4, 4]], gt)[0] == [-1]
    assert _assign([[2, -17.5]], [[0, 0, 4, 4]], gt)[0] == [0]


# ---------------------------------------------------------------------------
# dynamic k
# ---------------------------------------------------------------------------
GT16 = [[0, 0, 16, 16]]
# decoded boxes with exact IoUs against GT16
IOU = {1.0: [0, 0, 16, 16], 0.75: [0, 0, 16, 12], 0.5: [0, 0, 16, 8],
       0.25: [0, 0, 16, 4], 0.125: [0, 0, 16, 2]}
INSIDE = [[4, 4], [8, 8], [12, 12], [6, 10]]


def _k(ious, **cfg):
    gt_inds, _ = _assign(INSIDE[:len(ious)], [IOU[i] for i in ious], GT16,
                         **cfg)
    return sum(g == 0 for g in gt_inds)


def test_dynamic_k_truncates_the_iou_sum():
    """k = int(sum): 1 + .75 + .25 = 2.0 exactly gives 2; 1 + .75 + .125 =
    1.875 gives 1; 1 + 1 + .75 = 2.75 gives 2."""
    assert _k([1.0, 0.75, 0.25]) == 2
    assert _k([1.0, 0.75, 0.125]) == 1
    assert _k([1.0, 1.0, 0.75]) == 2


def test_dynamic_k_is_at_least_one():
    """.25 + .125 = .375: int gives 0, clamped to 1."""
    assert _k([0.25, 0.125]) == 1
    assert _k([0.125]) == 1


def test_dynamic_k_sums_the_topk_largest_ious():
    """IoUs 1, .75, .25: the 2 largest sum to 1.75 (k = 1), the 3 largest to
    2.0 (k = 2)."""
    assert _k([0.25, 1.0, 0.75], topk=2) == 1
    assert _k([0.25, 1.0, 0.75], topk=3) == 2
    # topk larger than the number of priors: all of them
    assert _k([0.25, 1.0, 0.75], topk=50) == 2


def test_equal_costs_are_taken_in_prior_order_up_to_k():
    """p1 decodes to the GT (IoU 1, cheapest); p0, p2, p3 decode to
    [0, 0, 16, 8] (IoU .5, the same cost). k = int(1 + 1.5) = 2: p1 and,
    of the three tied, the first (p0)."""
    gt_inds, _ = _assign(INSIDE, [IOU[0.5], IOU[1.0], IOU[0.5], IOU[0.5]],
                         GT16)
    assert gt_inds == [0, 0, -1, -1]
    # all four tied (IoU .75, sum 3): k = 3, the first three
    gt_inds, _ = _assign(INSIDE, [IOU[0.75]] * 4, GT16)
    assert gt_inds == [0, 0, 0, -1]


def test_gt_without_candidate_next_to_one_with():
    """Image 0 has a GT with candidates, image 1 a GT far from every prior
    (dynamic k 0 there) and image 0 a padded GT slot: only image 0's GT
    takes a prior."""
    pts = torch.tensor([[8., 8.], [100., 100.]])
    priors = torch.cat([pts, torch.full_like(pts, 8.)], 1)
    decoded = torch.tensor([[[0., 0, 16, 16], [90, 90, 110, 110]]] * 2)
    gt = torch.tensor([[[0., 0, 16, 16], [0, 0, 0, 0]],
                       [[500, 500, 516, 516], [0, 0, 0, 0]]])
    out = _assigner().batch_assign(
        torch.full((2, 2, 1), 0.1), priors, decoded, gt,
        torch.zeros(2, 2, dtype=torch.long),
        torch.tensor([[True, False], [True, False]]))
    assert out['gt_inds'].tolist() == [[0, -1], [-1, -1]]
    assert out['labels'].tolist() == [[0, -1], [-1, -1]]
    assert out['ious'].tolist() == [[1.0, 0.0], [0.0, 0.0]]


# ---------------------------------------------------------------------------
# priors claimed by several GTs
# ---------------------------------------------------------------------------
def test_a_prior_matched_by_one_gt_stays_with_it():
    """GT A [0, 0, 16, 16], GT B [0, 0, 16, 8]; priors P (4, 4) and
    Q (12, 4) inside both; IoU cost only (cls_weight 0).
    P decodes [0, 0, 16, 10]: IoU(A) = 160/256 = .625, IoU(B) = 128/160 = .8
    Q decodes [0, 0, 16, 8]:  IoU(A) = .5,             IoU(B) = 1
    k_A = int(1.125) = 1 -> P; k_B = int(1.8) = 1 -> Q. P is cheaper for B
    (.8 > .625) but B did not take it: P stays with A."""
    gt_inds, ious = _assign([[4, 4], [12, 4]],
                            [[0, 0, 16, 10], [0, 0, 16, 8]],
                            [[0, 0, 16, 16], [0, 0, 16, 8]], cls_weight=0.)
    assert gt_inds == [0, 1]
    assert ious.tolist() == [0.625, 1.0]


def test_a_prior_matched_by_two_gts_goes_to_the_cheaper_then_the_first():
    """Two GTs [0, 0, 16, 16] and [0, 0, 16, 8] both take P (their only
    candidate): IoU .5 for A, 1 for B -> B. Two identical GTs (equal costs)
    -> the first."""
    gt_inds, ious = _assign([[4, 4]], [[0, 0, 16, 8]],
                            [[0, 0, 16, 16], [0, 0, 16, 8]], cls_weight=0.)
    assert gt_inds == [1] and ious.tolist() == [1.0]
    gt_inds, _ = _assign([[4, 4]], [[0, 0, 16, 8]],
                         [[0, 0, 16, 16], [0, 0, 16, 8]][::-1],
                         cls_weight=0.)
    assert gt_inds == [0]
    gt_inds, _ = _assign([[4, 4]], [[0, 0, 16, 8]],
                         [[0, 0, 16, 16], [0, 0, 16, 16]], [1, 0],
                         scores=[[0.3, 0.3]])
    assert gt_inds == [0]


# ---------------------------------------------------------------------------
# head targets: DFL clamp, matched GT, background
# ---------------------------------------------------------------------------
def _head(reg_max=7, num_classes=1, strides=(8, )):
    return MODELS.build(
        dict(type='ZeroHead', num_classes=num_classes,
             in_channels=[1] * len(strides), strides=list(strides),
             reg_max=reg_max, last_kernel_size=1))


def _targets(head, points, decoded, gt_boxes, gt_labels=None, stride=8.):
    pts = torch.tensor(points, dtype=torch.float32)
    priors = torch.cat([pts, torch.full_like(pts, stride)], 1)
    gt = torch.tensor(gt_boxes, dtype=torch.float32)
    labels = torch.zeros(len(gt_boxes), dtype=torch.long) \
        if gt_labels is None else torch.tensor(gt_labels)
    probs = torch.full((1, len(points), head.num_classes), 0.5)
    return head.get_targets(probs,
                            torch.tensor(decoded, dtype=torch.float32)[None],
                            priors, [InstanceData(bboxes=gt, labels=labels)])


@pytest.mark.parametrize('reg_max', [7, 16])
def test_dfl_targets_clamped_below_reg_max(reg_max):
    """Prior (160, 160), stride 8; GT sides at reg_max (beyond the clamp),
    reg_max - 1/16 (just beyond), reg_max - 1/8 (just inside) and 1/8
    strides: targets reg_max - 0.1, reg_max - 0.1, reg_max - 1/8, 1/8."""
    r = float(reg_max)
    box = [160 - 8 * r, 160 - 8 * (r - 1 / 16), 160 + 8 * (r - 1 / 8), 161]
    t = _targets(_head(reg_max), [[160, 160]], [box], [box])
    assert t['num_pos'] == 1
    top = torch.tensor(r - 0.1)  # the fp32 value of the clamp
    assert t['dfl_targets'][0, 0].tolist() == [
        top.item(), top.item(), r - 1 / 8, 1 / 8]
    assert t['bbox_targets'][0, 0].tolist() == box


def test_dfl_targets_clamped_at_zero():
    """A tiny GT [60, 60, 62, 62] holds no prior; prior (64, 64) is in its
    centre square, the only candidate, taken with +1e8. Distances in strides:
    8 - 7.5 = .5 left and top, 7.75 - 8 = -.25 right and bottom -> 0."""
    t = _targets(_head(), [[64, 64]], [[60, 60, 62, 62]], [[60, 60, 62, 62]])
    assert t['num_pos'] == 1
    assert t['dfl_targets'][0, 0].tolist() == [0.5, 0.5, 0.0, 0.0]
    # on the edge: exactly 0
    t = _targets(_head(), [[64, 64]], [[60, 60, 64, 64]], [[60, 60, 64, 64]])
    assert t['dfl_targets'][0, 0].tolist() == [0.5, 0.5, 0.0, 0.0]


def test_each_positive_gets_its_own_gt_and_background_nothing():
    """GT 0 [0, 0, 16, 16] label 1 (taken by p1), GT 1 [100, 100, 116, 116]
    label 0 (taken by p2); p0 far from both is background."""
    head = _head(num_classes=2)
    gts = [[0, 0, 16, 16], [100, 100, 116, 116]]
    t = _targets(head, [[300, 300], [8, 8], [108, 108]],
                 [[290, 290, 310, 310], gts[0], gts[1]], gts, [1, 0])
    assert t['fg_mask'][0].tolist() == [False, True, True]
    assert t['labels'][0].tolist() == [2, 1, 0]  # num_classes = background
    assert t['label_scores'][0].tolist() == [0.0, 1.0, 1.0]
    assert t['bbox_targets'][0].tolist() == [[0.0] * 4] + gts
    assert t['dfl_targets'][0].tolist() == [[0.0] * 4, [1.0] * 4,
                                            [1.0] * 4]
    assert t['num_pos'] == 2


# ---------------------------------------------------------------------------
# normalisers
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('local,expected', [(0., 1.), (0.5, 1.), (1., 1.),
                                            (1.25, 1.25), (3., 3.)])
def test_global_avg_factor_one_process(local, expected):
    assert zero_head.global_avg_factor(torch.tensor(local)) == expected


@pytest.mark.parametrize('local,expected', [(0.25, 0.5), (0.5, 0.5),
                                            (0.75, 0.75), (2., 2.)])
def test_global_avg_factor_clamps_the_sum_over_processes(local, expected):
    """Two processes with the same local value: max(2 * local, 1) / 2, so
    0.25 -> 0.5 (the per-process mean clamp max(.25, 1) would give 1)."""

    def all_reduce(t):
        t.mul_(2)

    with mock.patch.object(zero_head, 'all_reduce', all_reduce), \
            mock.patch.object(zero_head, 'get_world_size', lambda: 2):
        assert zero_head.global_avg_factor(torch.tensor(local)) == expected


def _two_prior_loss(prob, num_gts=2):
    """One level, 1 x 2 feature map: priors (0, 0) and (8, 0), stride 8,
    one class with probability ``prob`` at both, uniform bins (every side
    3.5 strides = 28 px): decoded [-28, -28, 28, 28] and [-20, -28, 36, 28].
    GT A [-8, -8, 8, 8] holds p0 only, GT B [0, -8, 16, 8] p1 only (p1 lies
    on A's right edge, p0 on B's left edge). Every IoU is u = 256 / 3136,
    k = max(1, int(2u)) = 1: A takes p0, B p1."""
    head = _head()
    logit = math.log(prob / (1 - prob))
    cls = torch.full((1, 1, 1, 2), logit)
    reg = torch.zeros(1, 32, 1, 2)
    gts = [[-8., -8, 8, 8], [0, -8, 16, 8]][:num_gts]
    losses = head.loss_by_feat(
        [cls], [reg],
        [InstanceData(bboxes=torch.tensor(gts),
                      labels=torch.zeros(num_gts, dtype=torch.long))], [{}])
    return {k: v.item() for k, v in losses.items()}, torch.sigmoid(cls)[0, 0,
                                                                         0]


@pytest.mark.parametrize('prob', [0.4, 0.5, 0.6])
def test_box_losses_divide_by_the_weight_sum_clamped_at_one(prob):
    """Weights = probabilities p, sum S = 2p (0.8, 1.0, 1.2 -> normaliser
    1, 1, 1.2). GIoU = IoU = u (the decoded box encloses the GT):
    loss_bbox = 2 * S * (1 - u) / max(S, 1). DFL with uniform bins is ln 8
    for any target: loss_dfl = .25 * S * 4 ln 8 / (4 max(S, 1))."""
    losses, p = _two_prior_loss(prob)
    u = 256 / 3136
    s = float(p.sum())
    norm = max(s, 1.0)
    assert losses['loss_bbox'] == pytest.approx(2 * s * (1 - u) / norm,
                                                rel=1e-5)
    assert losses['loss_dfl'] == pytest.approx(0.25 * s * math.log(8) / norm,
                                               rel=1e-5)


@pytest.mark.parametrize('num_gts', [1, 2])
def test_class_loss_divides_by_the_positive_count(num_gts):
    """QFL on probabilities: BCE(p, u) |u - p|^2 for a positive (target the
    IoU u), BCE(p, 0) p^2 for a negative; the sum over max(num_pos, 1)."""
    losses, p = _two_prior_loss(0.3, num_gts)
    u = torch.tensor(256 / 3136)
    pos = F.binary_cross_entropy(p[0], u) * (u - p[0])**2
    if num_gts == 2:
        other = F.binary_cross_entropy(p[1], u) * (u - p[1])**2
    else:  # p1 is background (only a candidate of A, k = 1)
        other = F.binary_cross_entropy(p[1], torch.tensor(0.)) * p[1]**2
    assert losses['loss_cls'] == pytest.approx(
        float(pos + other) / num_gts, rel=1e-5)
