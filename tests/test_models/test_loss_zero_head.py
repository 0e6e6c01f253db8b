"""ZeroHead training loss: formula checks and parity with the official
train-mode golden (full DAMO-YOLO-T on a batch of two 320x320 images)."""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

CASES = ['ckpt', 'head_init']
LEVEL_HW = [(40, 40), (20, 20), (10, 10)]
STRIDES = [8, 16, 32]


@pytest.fixture(scope='module')
def train_golden(golden_dir):
    return torch.load(
        osp.join(golden_dir, 'T_train_golden.pt'), weights_only=True)


def build_t_head():
    return MODELS.build(
        dict(
            type='ZeroHead',
            num_classes=80,
            in_channels=[64, 128, 256],
            reg_max=16,
            last_kernel_size=3))


def gt_list(golden):
    return [
        InstanceData(bboxes=b, labels=l)
        for b, l in zip(golden['gt_bboxes'], golden['gt_labels'])
    ]


def rel_err(value, ref):
    if torch.is_tensor(value):
        value = value.detach().item()
    return abs(value - ref) / abs(ref)


def test_mmdet_qfl_on_probabilities_is_the_official_formula():
    """mmdet's QualityFocalLoss(activated=True): sum over classes of
    BCE(p, 0) * p^2 for negatives and BCE(p, s) * |s - p|^2 at the label of
    positives, summed over priors and divided by the average factor."""
    gen = torch.Generator().manual_seed(0)
    probs = torch.rand(50, 6, generator=gen) * 0.98 + 0.01
    labels = torch.full((50, ), 6, dtype=torch.long)
    labels[[3, 17, 40]] = torch.tensor([0, 5, 2])
    scores = torch.zeros(50)
    scores[[3, 17, 40]] = torch.tensor([0.7, 0.2, 0.95])
    loss = MODELS.build(
        dict(
            type='QualityFocalLoss',
            use_sigmoid=True,
            activated=True,
            beta=2.0,
            loss_weight=1.0))(
                probs, (labels, scores), avg_factor=3.0)
    target = torch.zeros_like(probs)
    pos = labels < 6
    target[pos, labels[pos]] = scores[pos]
    by_hand = -(target * probs.log() + (1 - target) * (1 - probs).log())
    by_hand = (by_hand * (target - probs).abs().pow(2)).sum() / 3.0
    assert rel_err(loss, by_hand.item()) < 1e-6


def _stand_in_outputs(golden_case):
    """Per-level head outputs reproducing the golden flat outputs: class
    logits = logit(p); bin logits = log of a two-bin distribution whose
    expectation is the golden distance (DFL therefore differs)."""
    cls = golden_case['head_outputs']['cls_scores'].double()
    boxes = golden_case['head_outputs']['decoded_bboxes']
    head = build_t_head()
    priors = head.get_priors(LEVEL_HW, torch.float32, 'cpu')
    px, py, stride = priors[:, 0], priors[:, 1], priors[:, 2]
    dist = torch.stack([
        px - boxes[..., 0], py - boxes[..., 1], boxes[..., 2] - px,
        boxes[..., 3] - py
    ], -1) / stride[:, None]
    dist = dist.double().clamp(0, 16)
    low = dist.floor().clamp(max=15)
    w_high = dist - low
    probs = torch.zeros(*dist.shape, 17, dtype=torch.float64)
    probs.scatter_(-1, low.long()[..., None], (1 - w_high)[..., None])
    probs.scatter_add_(-1, low.long()[..., None] + 1, w_high[..., None])
    bin_logits = probs.clamp(min=1e-30).log()
    cls_logits = (cls.log() - torch.log1p(-cls))
    cls_maps, reg_maps, start = [], [], 0
    for h, w in LEVEL_HW:
        end = start + h * w
        cls_maps.append(cls_logits[:, start:end].permute(0, 2, 1).reshape(
            2, 80, h, w).float())
        reg_maps.append(bin_logits[:, start:end].permute(0, 2, 3, 1).reshape(
            2, 68, h, w).float())
        start = end
    return head, cls_maps, reg_maps


@pytest.mark.parametrize('case', CASES)
def test_qfl_and_giou_from_golden_head_outputs(train_golden, case):
    """Light stand-in for the full model: QFL and GIoU only depend on the
    flat head outputs, which the golden stores."""
    golden = train_golden['cases'][case]
    head, cls_maps, reg_maps = _stand_in_outputs(golden)
    scores, boxes = head.decode_outputs(cls_maps, reg_maps)
    assert (boxes - golden['head_outputs']['decoded_bboxes']).abs().max() \
        < 1e-3
    losses = head.loss_by_feat(cls_maps, reg_maps, gt_list(train_golden),
                               [{}, {}])
    assert rel_err(losses['loss_cls'], golden['losses']['loss_cls']) < 1e-4
    assert rel_err(losses['loss_bbox'], golden['losses']['loss_bbox']) < 1e-4
    assert losses['loss_dfl'] > 0


def test_loss_without_any_gt():
    head = build_t_head()
    torch.manual_seed(0)
    head.init_weights()
    feats = [
        torch.rand(2, c, h, w, requires_grad=True)
        for c, (h, w) in zip([64, 128, 256], [(4, 4), (2, 2), (1, 1)])
    ]
    empty = InstanceData(
        bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    losses = head.loss_by_feat(*head(feats), [empty, empty.clone()],
                               [{}, {}])
    assert losses['loss_bbox'].item() == 0
    assert losses['loss_dfl'].item() == 0
    # all 21 priors x 80 classes are negatives, averaged over max(0, 1) = 1
    probs = torch.cat([
        c.flatten(2).permute(0, 2, 1)
        for c in head(feats)[0]
    ], 1).sigmoid()
    expected = (F.binary_cross_entropy(
        probs, torch.zeros_like(probs), reduction='none') * probs**2).sum()
    assert rel_err(losses['loss_cls'], expected.item()) < 1e-5
    sum(losses.values()).backward()
    assert head.gfl_cls[0].weight.grad.abs().sum() > 0
    assert torch.isfinite(head.gfl_reg[0].weight.grad).all()


def test_loss_with_half_precision_outputs(train_golden):
    """Head outputs in fp16 (as under mixed precision) give the fp32 loss of
    the same values."""
    golden = train_golden['cases']['head_init']
    head, cls_maps, reg_maps = _stand_in_outputs(golden)
    cls_half = [c.half() for c in cls_maps]
    reg_half = [r.half() for r in reg_maps]
    with torch.autocast('cpu', dtype=torch.bfloat16):
        half = head.loss_by_feat(cls_half, reg_half, gt_list(train_golden),
                                 [{}, {}])
    full = head.loss_by_feat([c.float() for c in cls_half],
                             [r.float() for r in reg_half],
                             gt_list(train_golden), [{}, {}])
    for key in full:
        assert half[key].dtype == torch.float32
        assert torch.equal(half[key], full[key]), key


# --------------------------------------------------------------------------
# full model (backbone + neck + head of DAMO-YOLO-T)
# --------------------------------------------------------------------------
@pytest.fixture(scope='module')
def t_model(repo_root):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(repo_root, 'configs', 'damoyolo_t_coco.py'))
    return MODELS.build(cfg.model)


def _load_case(model, golden_dir, train_golden, case):
    from damoyolo_mm.converters import convert_official_state_dict
    official = dict(
        torch.load(
            osp.join(golden_dir, 'T_ckpt_fp16.pth'),
            weights_only=True)['model'])
    official.update(
        train_golden['cases'][case].get('state_dict_overrides', {}))
    model.load_state_dict(
        convert_official_state_dict(official, model.state_dict()),
        strict=True)
    model.train()


def _samples(train_golden):
    samples = []
    for gt in gt_list(train_golden):
        sample = DetDataSample()
        sample.gt_instances = gt
        sample.set_metainfo(
            dict(
                img_shape=(320, 320),
                batch_input_shape=(320, 320),
                pad_shape=(320, 320),
                scale_factor=(1., 1.)))
        samples.append(sample)
    return samples


@pytest.mark.parametrize('case', CASES)
def test_full_model_loss_parity(t_model, golden_dir, train_golden, case):
    _load_case(t_model, golden_dir, train_golden, case)
    with torch.no_grad():
        losses = t_model.loss(train_golden['inputs'], _samples(train_golden))
    ref = train_golden['cases'][case]['losses']
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_dfl'}
    for key in ('loss_cls', 'loss_bbox', 'loss_dfl'):
        assert rel_err(losses[key], ref[key]) < 1e-4, key
    total = sum(v.item() for v in losses.values())
    assert rel_err(total, ref['total_loss']) < 1e-4


@pytest.mark.heavy
@pytest.mark.parametrize('case', CASES)
def test_full_model_gradient_norm(t_model, golden_dir, train_golden, case):
    """Backward of the total loss: norm of all parameter gradients."""
    _load_case(t_model, golden_dir, train_golden, case)
    t_model.zero_grad()
    losses = t_model.loss(train_golden['inputs'], _samples(train_golden))
    sum(losses.values()).backward()
    norm = torch.sqrt(
        sum((p.grad.double()**2).sum() for p in t_model.parameters()
            if p.grad is not None)).item()
    ref = train_golden['cases'][case]['grad_norm_all_params']
    assert rel_err(norm, ref) < 1e-4
