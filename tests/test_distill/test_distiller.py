"""DAMOYOLODistiller: frozen hidden teacher, losses, training with the
weight schedule and student-only gradient clipping."""
import math

import pytest
import torch
from distill_helpers import (CLIP_NORM, MAX_ITERS, STUDENT_CH, TEACHER_CH,
                      distiller_cfg, make_batch, tiny_detector_cfg)
from mmdet.registry import MODELS

from damoyolo_mm.engine.hooks.distill_weight_hook import cosine_distill_weight


@pytest.fixture(scope='module')
def distiller(student_cfg, teacher_cfg, teacher_ckpt):
    torch.manual_seed(1)
    return MODELS.build(
        distiller_cfg(student_cfg, teacher_cfg, teacher_ckpt))


def test_teacher_is_frozen_and_hidden(distiller, teacher_ckpt):
    d = distiller
    teacher = d.teacher
    params = {id(p) for p in d.parameters()}
    assert not params & {id(p) for p in teacher.parameters()}
    assert all(not k.startswith('teacher') for k in d.state_dict())
    assert {k.split('.')[0] for k in d.state_dict()} == {
        'student', 'distill_loss'}
    assert all(m is not teacher for m in d.modules())
    assert all(not p.requires_grad for p in teacher.parameters())
    d.train()
    assert d.student.training and not teacher.training
    # init_weights (called by the runner) leaves the loaded teacher alone
    d.init_weights()
    ref = torch.load(teacher_ckpt, weights_only=False)['state_dict']
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, ref[k]), k


def test_heterogeneous_channels_align_modules(distiller):
    loss = distiller.distill_loss
    assert loss.student_channels == list(STUDENT_CH)
    assert loss.teacher_channels == list(TEACHER_CH)
    assert [tuple(m.weight.shape) for m in loss.align_module] == [
        (ct, cs, 1, 1) for cs, ct in zip(STUDENT_CH, TEACHER_CH)]


def test_loss_dict_has_weighted_distill_term(distiller):
    d = distiller
    d.train()
    d.zero_grad()
    inputs, samples = make_batch()
    d.distill_weight = 0.37
    losses = d.loss(inputs, samples)
    assert {'loss_cls', 'loss_bbox', 'loss_dfl', 'loss_distill'} <= set(
        losses)
    feats_s = d.student.extract_feat(inputs)
    with torch.no_grad():
        feats_t = d.teacher.extract_feat(inputs)
        expected = d.distill_loss(feats_s, feats_t)
    assert losses['loss_distill'].item() == pytest.approx(
        0.37 * expected.item(), rel=1e-5)
    assert expected.item() > 0
    sum(losses.values()).backward()
    assert all(p.grad is None for p in d.teacher.parameters())
    for m in d.distill_loss.align_module:
        assert m.weight.grad is not None and m.weight.grad.abs().sum() > 0
    grads = [p.grad for p in d.student.neck.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    d.zero_grad()
    d.distill_weight = 1.0


def test_inference_runs_the_student_alone(distiller):
    d = distiller
    d.eval()
    inputs, samples = make_batch(seed=3)
    out = d(inputs, samples, mode='tensor')
    ref = d.student._forward(inputs, samples)
    for a, b in zip(out, ref):
        for x, y in zip(a, b):
            assert torch.equal(x, y)
    preds = d(inputs, samples, mode='predict')
    assert len(preds) == 2 and hasattr(preds[0], 'pred_instances')
    with pytest.raises(RuntimeError, match='invalid mode'):
        d(inputs, samples, mode='bogus')


def test_device_dtype_moves_reach_the_teacher(student_cfg, teacher_cfg,
                                              teacher_ckpt):
    d = MODELS.build(distiller_cfg(student_cfg, teacher_cfg, teacher_ckpt))
    d.to(torch.float64)
    assert next(d.teacher.parameters()).dtype == torch.float64
    assert next(d.student.parameters()).dtype == torch.float64


def test_stride_mismatch_is_reported(tmp_path, student_cfg):
    # teacher neck on strides 4/8/16 instead of 8/16/32: refused when the
    # distiller is built, naming both stride sets and the teacher
    cfg = tiny_detector_cfg((32, 64, 128), 'TinyNASRes')
    cfg['backbone']['out_indices'] = (1, 2, 4)
    cfg['neck']['in_channels'] = [16, 16, 32]
    cfg['bbox_head']['strides'] = (4, 8, 16)
    teacher = MODELS.build(cfg)
    path = str(tmp_path / 't.pth')
    torch.save({'state_dict': teacher.state_dict()}, path)
    with pytest.raises(ValueError) as err:
        MODELS.build(distiller_cfg(student_cfg, cfg, path))
    msg = str(err.value)
    assert 'student head has 3 levels at strides [8, 16, 32]' in msg, msg
    assert 'teacher' in msg and 'strides [4, 8, 16]' in msg, msg


def test_teacher_level_count_mismatch_is_reported(distiller):
    # RepGFPN has >= 3 levels; another head (two levels) stands in here
    import types
    other = types.SimpleNamespace(bbox_head=types.SimpleNamespace(
        strides=[(8, 8), (16, 16)]))
    with pytest.raises(ValueError) as err:
        distiller._check_strides(other, "'teacher.py'")
    msg = str(err.value)
    assert '3 levels at strides [8, 16, 32]' in msg, msg
    assert "teacher 'teacher.py' has 2 levels at strides [8, 16]" in msg, msg


def test_level_count_mismatch_is_reported(student_cfg, teacher_cfg,
                                          teacher_ckpt):
    with pytest.raises(ValueError, match=r'\[64, 128\].*\[128, 256, 512\]'):
        MODELS.build(distiller_cfg(student_cfg, teacher_cfg, teacher_ckpt,
                                   student_channels=[64, 128]))


def test_teacher_checkpoint_errors(tmp_path, student_cfg, teacher_cfg,
                                   teacher_ckpt):
    with pytest.raises(ValueError, match='model.teacher_ckpt'):
        MODELS.build(distiller_cfg(student_cfg, teacher_cfg, None))
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        MODELS.build(distiller_cfg(student_cfg, teacher_cfg,
                                   str(tmp_path / 'nope.pth')))
    # a checkpoint of another architecture
    student = MODELS.build(student_cfg)
    wrong = str(tmp_path / 'student.pth')
    torch.save({'state_dict': student.state_dict()}, wrong)
    with pytest.raises(RuntimeError) as err:
        MODELS.build(distiller_cfg(student_cfg, teacher_cfg, wrong))
    msg = str(err.value)
    assert 'does not match the teacher config' in msg, msg
    assert 'student.pth' in msg and 'teacher_cfg' in msg, msg
    assert 'shape mismatches' in msg, msg
    # a distillation checkpoint
    sd = torch.load(teacher_ckpt, weights_only=False)['state_dict']
    dist = str(tmp_path / 'distill.pth')
    torch.save({'state_dict': {'student.' + k: v for k, v in sd.items()}},
               dist)
    with pytest.raises(ValueError, match='extract_student'):
        MODELS.build(distiller_cfg(student_cfg, teacher_cfg, dist))
    # the teacher must see the same pre-processing as the student
    other = dict(teacher_cfg)
    other['data_preprocessor'] = dict(other['data_preprocessor'],
                                      std=[2., 2., 2.])
    with pytest.raises(ValueError, match='std differs'):
        MODELS.build(distiller_cfg(student_cfg, other, teacher_ckpt))


# ---------------------------------------------------------------------- #
# training with mmengine's Runner (fixture `distill_run` in conftest.py)


def test_teacher_unchanged_student_and_align_trained(distill_run):
    rec = distill_run
    for k, v in rec['teacher_final'].items():
        assert torch.equal(v, rec['teacher_init'][k]), k
    assert all(g == [] for g in rec['teacher_grads'])
    assert not rec['teacher_training']
    assert not any(rec['teacher_requires_grad'])
    changed = {k for k, v in rec['final'].items()
               if v.is_floating_point() and not torch.equal(
                   v, rec['init'][k])}
    for prefix in ('student.backbone.', 'student.neck.',
                   'student.bbox_head.', 'distill_loss.align_module.'):
        assert any(k.startswith(prefix) for k in changed), prefix
    # the optimizer sees student + align parameters, never the teacher
    model = rec['model']
    optim_ids = {id(p) for p in rec['optim_params']}
    assert optim_ids == {id(p) for p in model.parameters()}
    assert not optim_ids & {id(p) for p in model.teacher.parameters()}
    ckpt = torch.load(rec['ckpt'], weights_only=False)
    assert all(k.split('.')[0] in ('student', 'distill_loss')
               for k in ckpt['state_dict'])


def test_weight_follows_schedule(distill_run):
    rec = distill_run
    assert rec['iters'] == list(range(MAX_ITERS))
    for i, w_attr, w_hub in zip(rec['iters'], rec['weight_attr'],
                                rec['weight_hub']):
        # DAMO-YOLO: ((1 - cos(i * pi / T)) / 2) * (0.1 - 1) + 1, T = all
        # training iterations
        official = ((1 - math.cos(i * math.pi / MAX_ITERS)) / 2) * (
            0.1 - 1) + 1
        assert w_attr == pytest.approx(official, abs=1e-12)
        assert w_hub == pytest.approx(official, abs=1e-12)
    assert rec['weight_attr'][0] == 1.0
    assert all('loss_distill' in keys for keys in rec['loss_keys'])
    assert all(v > 0 for v in rec['loss_distill'])


def test_student_gradients_clipped_align_not(distill_run):
    rec = distill_run
    assert len(rec['pre_norm']) == MAX_ITERS
    for pre, post in zip(rec['pre_norm'], rec['post_norm']):
        assert pre is not None
        assert post == pytest.approx(min(pre, CLIP_NORM), rel=1e-4)
    assert max(rec['pre_norm']) > CLIP_NORM  # clipping really happened
    # align convolutions are outside the clipped set (unclipped norms)
    assert max(rec['align_norm']) > 0


def test_closed_form_weights():
    T = 300 * 460
    assert cosine_distill_weight(0, T) == 1.0
    assert cosine_distill_weight(T // 2, T) == pytest.approx(0.55)
    assert cosine_distill_weight(T // 4, T) == pytest.approx(
        0.55 + 0.45 * math.cos(math.pi / 4))
    assert cosine_distill_weight(T, T) == pytest.approx(0.1)
    assert cosine_distill_weight(2 * T, T) == pytest.approx(0.1)
    assert cosine_distill_weight(10, 20, 2.0, 0.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match='span'):
        cosine_distill_weight(0, 0)


def test_gradient_figures_logged(distill_run):
    # DistillGradientHook: one measurement per iteration in the message hub
    # (official setting here: nothing scaled)
    hub = distill_run['grad_hub']
    assert len(hub) == MAX_ITERS
    for rec in hub:
        assert rec['det_backbone'] > 0 and rec['dis_backbone'] > 0
        assert -1 <= rec['cos_neck'] <= 1
        assert rec['ratio_feat'] == pytest.approx(rec['ratio_feat_raw'])


def test_head_distill_needs_the_teacher_classes_and_reg_max(
        tmp_path, student_cfg):
    # a teacher for 5 classes (student: 3) and one with reg_max 16
    # (student: 7): refused when prediction distillation is on, naming both
    for key, value, match in (
            ('num_classes', 5, r'num_classes=3 .*num_classes=5'),
            ('reg_max', 16, r'reg_max=7 .*reg_max=16.*loss_box=None')):
        cfg = tiny_detector_cfg((32, 64, 128), 'TinyNASRes')
        cfg['bbox_head'][key] = value
        path = str(tmp_path / f'{key}.pth')
        torch.save({'state_dict': MODELS.build(cfg).state_dict()}, path)
        with pytest.raises(ValueError, match=match):
            MODELS.build(distiller_cfg(
                student_cfg, cfg, path,
                head_distill=dict(type='HeadDistillLoss')))
    # class scores only: another reg_max is fine
    model = MODELS.build(distiller_cfg(
        student_cfg, cfg, path,
        head_distill=dict(type='HeadDistillLoss', loss_box=None)))
    inputs, samples = make_batch(2, 64)
    data = model.data_preprocessor(
        dict(inputs=list(inputs.to(torch.uint8)), data_samples=samples),
        True)
    model.train()
    losses = model.loss(data['inputs'], data['data_samples'])
    assert 'loss_distill_cls' in losses and 'loss_distill_box' not in losses
    assert float(losses['loss_distill_cls'].detach()) > 0


def test_nothing_to_distil_is_an_error(student_cfg, teacher_cfg,
                                       teacher_ckpt):
    with pytest.raises(ValueError, match='nothing to distil'):
        MODELS.build(distiller_cfg(student_cfg, teacher_cfg, teacher_ckpt,
                                   distill_loss=None))
