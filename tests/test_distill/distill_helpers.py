"""Tiny DAMO-YOLO students / teachers for the distillation tests."""
import copy

import pytest
import torch

TINY_STRUCTURE = [
    {'class': 'ConvKXBNRELU', 'in': 3, 'out': 8, 'k': 3, 's': 1},
    {'class': 'SuperResConvK1KX', 'in': 8, 'out': 16, 'btn': 8, 'k': 3,
     's': 2, 'L': 1},
    {'class': 'SuperResConvK1KX', 'in': 16, 'out': 16, 'btn': 8, 'k': 3,
     's': 2, 'L': 1},
    {'class': 'SuperResConvK1KX', 'in': 16, 'out': 32, 'btn': 16, 'k': 3,
     's': 2, 'L': 1},
    {'class': 'SuperResConvK1KX', 'in': 32, 'out': 32, 'btn': 16, 'k': 3,
     's': 1, 'L': 1},
    {'class': 'SuperResConvK1KX', 'in': 32, 'out': 64, 'btn': 16, 'k': 3,
     's': 2, 'L': 1},
]
NORM = dict(type='BN', momentum=0.03, eps=0.001)


def tiny_detector_cfg(neck_out, backbone='TinyNASMob', num_classes=3):
    """A small DAMOYOLO: tiny TinyNAS backbone (16/32/64 channels at
    strides 8/16/32), RepGFPN with ``neck_out`` channels, ZeroHead."""
    if backbone == 'TinyNASMob':
        bb = dict(type='TinyNASMob', use_focus=False, depthwise=True,
                  act_cfg=dict(type='SiLU', inplace=True))
        block_type = 'mobile'
    else:
        bb = dict(type='TinyNASRes', use_focus=True, reparam=True,
                  act_cfg=dict(type='ReLU', inplace=True))
        block_type = 'rep'
    bb.update(structure=copy.deepcopy(TINY_STRUCTURE), out_indices=(2, 4, 5),
              with_spp=True, norm_cfg=NORM)
    return dict(
        type='DAMOYOLO',
        data_preprocessor=dict(
            type='DetDataPreprocessor', mean=[0., 0., 0.], std=[1., 1., 1.],
            bgr_to_rgb=True, pad_size_divisor=32),
        backbone=bb,
        neck=dict(type='RepGFPN', in_channels=[16, 32, 64],
                  out_channels=list(neck_out), depth=0.34, hidden_ratio=0.25,
                  block_type=block_type, norm_cfg=NORM,
                  act_cfg=dict(type='SiLU', inplace=True)),
        bbox_head=dict(
            type='ZeroHead', num_classes=num_classes,
            in_channels=list(neck_out), strides=(8, 16, 32), reg_max=7,
            last_kernel_size=1, stacked_convs=0,
            loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True,
                          activated=True, beta=2.0, loss_weight=1.0),
            loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
            loss_dfl=dict(type='DistributionFocalLoss', loss_weight=0.25)),
        train_cfg=dict(assigner=dict(type='AlignOTAAssigner',
                                     center_radius=2.5, topk=10,
                                     cls_weight=1.0, iou_weight=3.0)),
        test_cfg=dict(nms_pre=1000, score_thr=0.0,
                      nms=dict(type='nms', iou_threshold=0.7),
                      max_per_img=20))


STUDENT_CH = (64, 128, 256)
TEACHER_CH = (128, 256, 512)


@pytest.fixture(scope='session')
def student_cfg():
    return tiny_detector_cfg(STUDENT_CH, 'TinyNASMob')


@pytest.fixture(scope='session')
def teacher_cfg():
    return tiny_detector_cfg(TEACHER_CH, 'TinyNASRes')


@pytest.fixture(scope='session')
def teacher_ckpt(tmp_path_factory, teacher_cfg):
    """A 'trained' teacher: random weights with non-trivial BN statistics,
    saved as an mmengine checkpoint."""
    from mmdet.registry import MODELS
    torch.manual_seed(0)
    teacher = MODELS.build(teacher_cfg)
    with torch.no_grad():
        for m in teacher.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp('teacher') / 'teacher.pth'
    torch.save({'meta': {}, 'state_dict': teacher.state_dict()}, str(path))
    return str(path)


def make_batch(batch_size=2, size=64, seed=0):
    """Raw (uint8-range float) images and DetDataSamples with one box."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(seed)
    inputs = torch.rand(batch_size, 3, size, size, generator=g) * 255
    samples = []
    for i in range(batch_size):
        ds = DetDataSample(metainfo=dict(
            img_shape=(size, size), ori_shape=(size, size),
            pad_shape=(size, size), batch_input_shape=(size, size),
            scale_factor=(1., 1.)))
        ds.gt_instances = InstanceData(
            bboxes=torch.tensor([[4. + i, 6., 40., 30. + i]]),
            labels=torch.tensor([i % 3]))
        samples.append(ds)
    return inputs, samples


class ListDataset(torch.utils.data.Dataset):
    """Fixed images + boxes in the format of mmdet's packed inputs."""

    def __init__(self, num=8, size=64):
        self.items = []
        for i in range(num):
            inputs, samples = make_batch(1, size, seed=100 + i)
            self.items.append(
                dict(inputs=inputs[0].to(torch.uint8),
                     data_samples=samples[0]))
        self.metainfo = dict(classes=('a', 'b', 'c'))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, idx):
        return self.items[idx]


def distiller_cfg(student_cfg, teacher_cfg, teacher_ckpt, **kwargs):
    cfg = dict(type='DAMOYOLODistiller', student=copy.deepcopy(student_cfg),
               teacher_cfg=copy.deepcopy(teacher_cfg),
               teacher_ckpt=teacher_ckpt)
    cfg.update(kwargs)
    return cfg


MAX_ITERS = 3
CLIP_NORM = 0.5


@pytest.fixture(scope='session')
def distill_run(tmp_path_factory, student_cfg, teacher_cfg, teacher_ckpt):
    """Train the tiny distiller for MAX_ITERS iterations with mmengine's
    Runner (weight + grad-clip hooks, EMA, checkpoint) and record what the
    tests check."""
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    records = dict(iters=[], weight_attr=[], weight_hub=[], loss_distill=[],
                   loss_keys=[], pre_norm=[], post_norm=[], align_norm=[],
                   teacher_grads=[], weight_log=[], grad_hub=[])

    class Recorder(Hook):
        priority = 'LOWEST'

        def before_train(self, runner):
            model = runner.model
            records['init'] = {
                k: v.detach().clone() for k, v in model.state_dict().items()}
            records['teacher_init'] = {
                k: v.detach().clone()
                for k, v in model.teacher.state_dict().items()}
            records['optim_params'] = [
                p for g in runner.optim_wrapper.optimizer.param_groups
                for p in g['params']]
            clip_hook = [h for h in runner.hooks
                         if type(h).__name__ == 'DistillGradClipHook'][0]
            student = [p for p in model.student.parameters()
                       if p.requires_grad]
            align = list(model.distill_loss.parameters())

            def norm(ps):
                return float(torch.norm(torch.stack(
                    [p.grad.norm() for p in ps if p.grad is not None])))

            def probe(optimizer, args, kwargs):
                records['pre_norm'].append(clip_hook.last_norm)
                records['post_norm'].append(norm(student))
                records['align_norm'].append(norm(align))
                records['teacher_grads'].append(
                    [p.grad for p in model.teacher.parameters()
                     if p.grad is not None])

            runner.optim_wrapper.optimizer.register_step_pre_hook(probe)

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            records['iters'].append(runner.iter)
            records['weight_attr'].append(runner.model.distill_weight)
            records['weight_hub'].append(runner.message_hub.get_scalar(
                'train/distill_weight').current())
            records['loss_distill'].append(
                float(outputs['loss_distill'].detach()))
            records['loss_keys'].append(sorted(outputs))
            records['grad_hub'].append({
                k: runner.message_hub.get_scalar(f'train/grad_{k}').current()
                for k in ('det_backbone', 'dis_backbone', 'cos_neck',
                          'ratio_feat', 'ratio_feat_raw')})

    torch.manual_seed(0)
    work_dir = tmp_path_factory.mktemp('distill_run')
    dataset = ListDataset(num=8)
    runner = Runner(
        model=distiller_cfg(student_cfg, teacher_cfg, teacher_ckpt),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=dataset, batch_size=2, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=MAX_ITERS),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01,
                                          momentum=0.9)),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=MAX_ITERS,
                            by_epoch=False)),
        custom_hooks=[
            dict(type='EMAHook', ema_type='DAMOYOLOEMA', momentum=0.3,
                 gamma=1., update_buffers=True, priority=49),
            dict(type='DistillWeightHook', start_weight=1.0,
                 end_weight=0.1),
            dict(type='DistillGradClipHook', max_norm=CLIP_NORM),
            dict(type='DistillGradientHook', interval=1),
            Recorder(),
        ],
        default_scope='mmdet',
        log_level='WARNING',
        experiment_name='distill_run')
    runner.train()
    model = runner.model
    records['final'] = {
        k: v.detach().clone() for k, v in model.state_dict().items()}
    records['teacher_final'] = {
        k: v.detach().clone() for k, v in model.teacher.state_dict().items()}
    records['teacher_training'] = model.teacher.training
    records['teacher_requires_grad'] = [
        p.requires_grad for p in model.teacher.parameters()]
    records['model'] = model
    records['ckpt'] = str(work_dir / f'iter_{MAX_ITERS}.pth')
    records['work_dir'] = str(work_dir)
    return records
