"""Worker of tests/test_engine/test_distributed.py (not collected by pytest).

Started by torchrun (``--launcher pytorch``, gloo) or as one plain process
(``--launcher none``): trains a small DAMO-YOLO (the Ns model at 128 px, or
the demo Ns <- Nm distiller) for a few iterations on the first images of a
COCO-style set, with a deterministic pipeline (resize, pack) and sampler
(no shuffling), and writes to ``--out``:

* ``final.pth``: the model's state dict after training (rank 0);
* ``steps.json``: per iteration, the largest difference of any parameter /
  buffer between the ranks, and what was run (world size, SyncBN layers,
  model wrapper, teacher checksums).
"""
import argparse
import json
import os
import os.path as osp
import sys

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from mmengine.config import Config  # noqa: E402
from mmengine.dist import all_gather, get_rank, get_world_size  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from mmengine.model import is_model_wrapper  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

CONFIGS = {
    'det': 'configs/damoyolo_ns_coco.py',
    'distill': 'configs/distill/damoyolo_demo_ns_distill_from_nm.py',
}


def flat_state(model):
    """Every parameter and floating buffer, flattened, in a fixed order."""
    return torch.cat([v.detach().float().flatten()
                      for k, v in sorted(model.state_dict().items())
                      if v.is_floating_point()])


def flat_params(model):
    return torch.cat([p.detach().float().flatten()
                      for p in model.parameters()])


class RankCheckHook(Hook):
    """After each iteration: max |difference| of the weights across ranks."""

    def __init__(self):
        self.steps = []
        self.init = None

    def before_train(self, runner):
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        self.init = flat_params(model)
        self.init_state = {k: v.detach().clone()
                           for k, v in model.state_dict().items()}

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        flat = flat_state(model)
        gathered = all_gather(flat)
        diff = max(float((g - gathered[0]).abs().max()) for g in gathered)
        self.steps.append(dict(iter=runner.iter + 1, max_rank_diff=diff,
                               numel=flat.numel()))


def build_cfg(args):
    cfg = Config.fromfile(osp.join(REPO, CONFIGS[args.mode]))
    size = (args.size, args.size)
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=size, keep_ratio=False),
        dict(type='PackDetInputs'),
    ]
    root = args.data_root
    cfg.train_dataloader = dict(
        batch_size=args.batch, num_workers=0, persistent_workers=False,
        sampler=dict(type='DefaultSampler', shuffle=False),
        batch_sampler=None,
        collate_fn=dict(type='pseudo_collate'),
        dataset=dict(
            type='DAMOYOLOCocoDataset', data_root=root,
            ann_file='annotations/instances_train.json',
            data_prefix=dict(img='train/'),
            metainfo=dict(classes=('disk', 'rectangle', 'triangle', 'ring',
                                   'cross')),
            indices=args.num_images, filter_cfg=dict(filter_empty_gt=False),
            pipeline=pipeline))
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1,
                         val_interval=10)
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator',
                'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks', [])
                        if h['type'] not in ('PipelineSwitchHook',
                                             'SADAProgressHook')]
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.pop('visualization', None)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.auto_scale_lr = dict(enable=False, base_batch_size=64)
    # SGD as in the T / S / M / L recipe, at a constant lr that moves the
    # weights by ~0.1 % in 2 steps (10x the test's tolerance; larger steps
    # make the next forward chaotic). (Adam(W)'s first steps are
    # lr * g / |g| per element: float noise on a near-zero gradient becomes
    # a full step, so its weights are no well-conditioned check.)
    cfg.optim_wrapper = dict(
        type='OptimWrapper',
        optimizer=dict(type='SGD', lr=args.lr, momentum=0.9, nesterov=True,
                       weight_decay=5e-4),
        paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))
    cfg.param_scheduler = []
    cfg.randomness = dict(seed=0)
    cfg.work_dir = osp.join(args.out, 'work')
    cfg.visualizer = dict(type='Visualizer', name=f'dist_{args.mode}')
    model = cfg.model.student if args.mode == 'distill' else cfg.model
    model.bbox_head.num_classes = 5
    if args.mode == 'distill':
        cfg.model.teacher_ckpt = args.teacher_ckpt
        # the default prediction distillation plus DAMO-YOLO's neck CWD:
        # its align convolutions (trainable, outside the student) join the
        # DDP reducer too
        cfg.model.distill_loss = 'cwd'
        assert cfg.model.head_distill is not None
    if not args.sync_bn:
        cfg.sync_bn = None
    return cfg


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--mode', choices=sorted(CONFIGS), default='det')
    parser.add_argument('--launcher', default='none')
    parser.add_argument('--data-root', required=True)
    parser.add_argument('--out', required=True)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--num-images', type=int, default=8)
    parser.add_argument('--size', type=int, default=128)
    parser.add_argument('--teacher-ckpt', default=None)
    parser.add_argument('--lr', type=float, default=0.05)
    parser.add_argument('--no-sync-bn', dest='sync_bn', action='store_false')
    args = parser.parse_args()
    torch.set_num_threads(1)

    from damoyolo_mm.engine import setup_distributed
    from damoyolo_mm.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = build_cfg(args)
    cfg.launcher = args.launcher
    setup_distributed(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    check = RankCheckHook()
    runner.register_hook(check, priority='LOWEST')
    model = runner.model.module if is_model_wrapper(
        runner.model) else runner.model
    teacher = getattr(model, 'teacher', None)
    teacher_before = None if teacher is None else flat_state(teacher)
    runner.train()

    if get_rank() == 0:
        os.makedirs(args.out, exist_ok=True)
        sync_bn = sum('SyncBatchNorm' in type(m).__name__
                      for m in model.modules())
        report = dict(
            world_size=get_world_size(), steps=check.steps,
            wrapper=type(runner.model).__name__, sync_bn_layers=sync_bn,
            rel_change=float((flat_params(model) - check.init).norm() /
                             check.init.norm()),
            bn_layers=sum(isinstance(m, torch.nn.modules.batchnorm.
                                     _BatchNorm) for m in model.modules()))
        if teacher is not None:
            after = flat_state(teacher)
            report['teacher_max_change'] = float(
                (after - teacher_before).abs().max())
            report['teacher_in_state_dict'] = any(
                k.startswith('teacher') for k in model.state_dict())
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        torch.save(state, osp.join(args.out, 'final.pth'))
        torch.save(check.init_state, osp.join(args.out, 'init.pth'))
        tmp = osp.join(args.out, 'steps.json.tmp')
        with open(tmp, 'w') as f:
            json.dump(report, f)
        os.replace(tmp, osp.join(args.out, 'steps.json'))


if __name__ == '__main__':
    main()
