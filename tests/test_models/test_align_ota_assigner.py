"""AlignOTAAssigner: golden targets, hand-made cases, edge cases."""
import os.path as osp

import pytest
import torch
from mmdet.models.task_modules.assigners import AssignResult
from mmdet.registry import MODELS, TASK_UTILS
from mmengine.structures import InstanceData

NUM_CLASSES = 80


@pytest.fixture(scope='module')
def train_golden(golden_dir):
    return torch.load(
        osp.join(golden_dir, 'T_train_golden.pt'), weights_only=True)


def build_assigner(**kwargs):
    cfg = dict(
        type='AlignOTAAssigner',
        center_radius=2.5,
        topk=10,
        cls_weight=1.0,
        iou_weight=3.0)
    cfg.update(kwargs)
    return TASK_UTILS.build(cfg)


def build_t_head():
    return MODELS.build(
        dict(
            type='ZeroHead',
            num_classes=NUM_CLASSES,
            in_channels=[64, 128, 256],
            reg_max=16,
            last_kernel_size=3))


def gt_list(bboxes, labels):
    return [
        InstanceData(bboxes=b, labels=l) for b, l in zip(bboxes, labels)
    ]


def prior_row(points, stride=8.):
    pts = torch.tensor(points, dtype=torch.float32)
    return torch.cat([pts, torch.full_like(pts, stride)], dim=1)


@pytest.mark.parametrize('case', ['ckpt', 'head_init'])
def test_golden_targets(train_golden, case):
    """From the golden head outputs the targets equal the official ones."""
    golden = train_golden['cases'][case]
    head = build_t_head()
    priors = head.get_priors([(40, 40), (20, 20), (10, 10)], torch.float32,
                             'cpu')
    targets = head.get_targets(
        golden['head_outputs']['cls_scores'],
        golden['head_outputs']['decoded_bboxes'], priors,
        gt_list(train_golden['gt_bboxes'], train_golden['gt_labels']))
    ref = golden['assign']
    assert targets['num_pos'] == golden['num_pos'] == 30
    for i in range(2):
        pos = targets['fg_mask'][i].nonzero().squeeze(1)
        assert torch.equal(pos, ref['pos_inds'][i])
        assert torch.equal(targets['labels'][i], ref['labels'][i])
        assert torch.equal(targets['label_scores'][i],
                           ref['label_scores'][i])
        assert torch.equal(targets['bbox_targets'][i][pos],
                           ref['bbox_targets_pos'][i])
        assert torch.equal(targets['dfl_targets'][i][pos],
                           ref['dfl_targets_pos'][i])
        # background carries no targets
        bg = ~targets['fg_mask'][i]
        assert (targets['labels'][i][bg] == NUM_CLASSES).all()
        assert targets['bbox_targets'][i][bg].abs().sum() == 0


def test_hand_made_dynamic_k():
    """Two GTs, six priors (stride 8), probabilities 0.1 everywhere.

    GT A = [4, 4, 28, 12] (label 0), GT B = [40, 0, 64, 16] (label 2).
    Priors p0..p2 lie inside A and its centre region, p3/p4 inside B, p5 far
    from both (not a candidate). Decoded boxes give IoU(A) = 1, 0.5, 0.75 for
    p0, p1, p2 and IoU(B) = 1, 0.5 for p3, p4.
    dynamic k: A: int(1 + 0.75 + 0.5) = 2, B: int(1 + 0.5) = 1.
    Costs of A (3 classes, all p = 0.1):
      p0: BCE(.1, 1) * .81 = 1.865   (+0 IoU cost)
      p1: BCE(.1, .5) * .16 = 0.193 + 3 * ln 2 = 2.272
      p2: BCE(.1, .75) * .4225 = 0.741 + 3 * -ln .75 = 1.604
    so A takes p2 and p0; B takes p3 (zero IoU cost).
    """
    priors = prior_row([[8, 8], [16, 8], [24, 8], [48, 8], [56, 8],
                        [100, 100]])
    decoded = torch.tensor([[4, 4, 28, 12], [4, 4, 16, 12], [10, 4, 28, 12],
                            [40, 0, 64, 16], [40, 0, 52, 16],
                            [90, 90, 110, 110]]).float()
    pred = InstanceData(
        priors=priors, bboxes=decoded, scores=torch.full((6, 3), 0.1))
    gt = InstanceData(
        bboxes=torch.tensor([[4., 4, 28, 12], [40, 0, 64, 16]]),
        labels=torch.tensor([0, 2]))
    result = build_assigner().assign(pred, gt)
    assert isinstance(result, AssignResult)
    assert result.num_gts == 2
    assert result.gt_inds.tolist() == [1, 0, 1, 2, 0, 0]
    assert result.labels.tolist() == [0, -1, 0, 2, -1, -1]
    assert torch.allclose(result.max_overlaps,
                          torch.tensor([1., 0., 0.75, 1., 0., 0.]))


def test_hand_made_conflict_goes_to_cheapest_gt():
    """Two GTs with the same box [0, 0, 32, 32] and labels 0 (A) and 1 (B).

    Decoded IoUs of p0, p1, p2 are 1, 0.25, 0.125 for both GTs, so dynamic
    k = int(1.375) = 1 each. p0 predicts class 1 with 0.9 and class 0 with
    0.1 (p1, p2: 0.1 and 0.1). Costs for A (label 0):
      p0: BCE(.1, 1) * .81 + BCE(.9, 0) * .81 = 3.73
      p1: BCE(.1, .25) * .0225 + .001 + 3 * -ln .25 = 4.17
      p2: ~0 + .001 + 3 * -ln .125 = 6.24
    and for B (label 1) p0 costs BCE(.9, 1) * .01 + BCE(.1, 0) * .01 = 0.002.
    Both take p0; it stays with the cheaper B and A gets nothing."""
    priors = prior_row([[8, 8], [16, 16], [24, 24]])
    decoded = torch.tensor([[0., 0, 32, 32], [0, 0, 16, 16], [0, 0, 16, 8]])
    scores = torch.tensor([[0.1, 0.9], [0.1, 0.1], [0.1, 0.1]])
    pred = InstanceData(priors=priors, bboxes=decoded, scores=scores)
    gt = InstanceData(
        bboxes=torch.tensor([[0., 0, 32, 32], [0, 0, 32, 32]]),
        labels=torch.tensor([0, 1]))
    result = build_assigner().assign(pred, gt)
    assert result.gt_inds.tolist() == [2, 0, 0]
    assert result.labels.tolist() == [1, -1, -1]
    assert result.max_overlaps.tolist() == [1.0, 0.0, 0.0]


def _random_batch(seed, num_gts=(3, 0, 5), num_classes=4):
    gen = torch.Generator().manual_seed(seed)
    head = MODELS.build(
        dict(
            type='ZeroHead',
            num_classes=num_classes,
            in_channels=[4, 4, 4],
            reg_max=7,
            last_kernel_size=1))
    priors = head.get_priors([(16, 16), (8, 8), (4, 4)], torch.float32,
                             'cpu')
    num_imgs, num_priors = len(num_gts), priors.size(0)
    scores = torch.rand(num_imgs, num_priors, num_classes, generator=gen)**3
    ctr = priors[None, :, :2] + torch.randn(
        num_imgs, num_priors, 2, generator=gen) * 6
    wh = torch.rand(num_imgs, num_priors, 2, generator=gen) * 50 + 4
    decoded = torch.cat([ctr - wh / 2, ctr + wh / 2], -1)
    gts = []
    for n in num_gts:
        c = torch.rand(n, 2, generator=gen) * 128
        s = torch.rand(n, 2, generator=gen) * 60 + 10
        gts.append(
            InstanceData(
                bboxes=torch.cat([c - s / 2, c + s / 2], -1).round(),
                labels=torch.randint(0, num_classes, (n, ), generator=gen)))
    return priors, scores, decoded, gts


def test_batch_equals_single_images_and_zero_gt_image():
    """Padding a batch (3, 0 and 5 GTs) changes nothing per image; the image
    without GT is all background."""
    assigner = build_assigner()
    priors, scores, decoded, gts = _random_batch(0)
    num_gts = max(len(g) for g in gts)
    gt_bboxes = torch.zeros(3, num_gts, 4)
    gt_labels = torch.zeros(3, num_gts, dtype=torch.long)
    gt_valid = torch.zeros(3, num_gts, dtype=torch.bool)
    for i, g in enumerate(gts):
        gt_bboxes[i, :len(g)] = g.bboxes
        gt_labels[i, :len(g)] = g.labels
        gt_valid[i, :len(g)] = True
    batch = assigner.batch_assign(scores, priors, decoded, gt_bboxes,
                                  gt_labels, gt_valid)
    for i, g in enumerate(gts):
        single = assigner.assign(
            InstanceData(priors=priors, bboxes=decoded[i], scores=scores[i]),
            g)
        gt_inds = torch.where(batch['fg_mask'][i], batch['gt_inds'][i] + 1,
                              torch.zeros_like(single.gt_inds))
        assert torch.equal(gt_inds, single.gt_inds)
        assert torch.equal(batch['labels'][i], single.labels)
        assert torch.equal(batch['ious'][i], single.max_overlaps)
    assert batch['fg_mask'][0].sum() > 0 and batch['fg_mask'][2].sum() > 0
    assert not batch['fg_mask'][1].any()
    assert (batch['labels'][1] == -1).all()
    # every GT of image 2 got at least one prior unless it lost them all in
    # conflicts, and each positive's label is its GT's label
    fg = batch['fg_mask'][2]
    assert torch.equal(batch['labels'][2][fg],
                       gts[2].labels[batch['gt_inds'][2][fg]])


def test_single_image_without_gt():
    priors, scores, decoded, _ = _random_batch(1)
    result = build_assigner().assign(
        InstanceData(priors=priors, bboxes=decoded[0], scores=scores[0]),
        InstanceData(
            bboxes=torch.zeros(0, 4), labels=torch.zeros(0,
                                                         dtype=torch.long)))
    assert result.num_gts == 0
    assert (result.gt_inds == 0).all()
    assert (result.labels == -1).all()
    assert (result.max_overlaps == 0).all()


def test_gt_larger_than_image():
    """A GT covering more than the 128x128 image: every prior is inside the
    box, the positives are the dynamic-k cheapest of those also inside the
    centre region (+-2.5 strides around (70, 70))."""
    priors, scores, decoded, _ = _random_batch(2)
    gt = InstanceData(
        bboxes=torch.tensor([[-60., -60., 200., 200.]]),
        labels=torch.tensor([3]))
    assigner = build_assigner()
    result = assigner.assign(
        InstanceData(priors=priors, bboxes=decoded[0], scores=scores[0]), gt)
    fg = result.gt_inds > 0
    assert fg.sum() >= 1
    radius = 2.5 * priors[fg, 2]
    assert ((priors[fg, 0] - 70).abs() < radius).all()
    assert ((priors[fg, 1] - 70).abs() < radius).all()
    assert (result.labels[fg] == 3).all()
    assert torch.isfinite(result.max_overlaps).all()
    # dynamic k from the 10 largest IoUs over all (candidate) priors
    from damoyolo_mm.models.task_modules.assigners import pairwise_iou
    ious = pairwise_iou(decoded[0], gt.bboxes)[:, 0]
    assert fg.sum() == max(1, int(ious.topk(10).values.sum()))


def test_bad_input_is_rejected():
    assigner = build_assigner()
    priors, scores, decoded, gts = _random_batch(3)
    with pytest.raises(ValueError, match='GT labels must lie in'):
        assigner.assign(
            InstanceData(priors=priors, bboxes=decoded[0], scores=scores[0]),
            InstanceData(
                bboxes=torch.tensor([[0., 0, 10, 10]]),
                labels=torch.tensor([7])))
    with pytest.raises(KeyError, match='priors'):
        assigner.assign(
            InstanceData(bboxes=decoded[0], scores=scores[0]), gts[0])
    with pytest.raises(ValueError, match='topk must be'):
        build_assigner(topk=0)
