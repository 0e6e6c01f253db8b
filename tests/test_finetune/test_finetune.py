"""Fine-tuning: an official-format checkpoint -> the fine-tuning config with
3 classes -> exactly the head's class layers re-initialised (logged by name),
everything else loaded; 2 training iterations, a checkpoint, an evaluation;
a checkpoint of another variant is refused with the strict-loading message.

The official goldens (``{'model': state_dict}``) are turned into load_from
files with the converter API first; that step stays valid when official
files load directly.
"""
import copy
import logging
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from damoyolo_mm.datasets import coco_subset, generate_demo_dataset
from damoyolo_mm.converters import convert_official_checkpoint
from damoyolo_mm.models.checkpoint import StateDictMismatchError
from damoyolo_mm.variants import variant_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'finetune',
                  'damoyolo_t_finetune_custom.py')
CLASSES = ('disk', 'triangle', 'cross')
CLASS_KEYS = {
    f'bbox_head.gfl_cls.{lvl}.{p}'
    for lvl in range(3) for p in ('weight', 'bias')
}
SIZE = (64, 64)


@pytest.fixture(scope='module')
def task_root(tmp_path_factory):
    """A new task: 4 train / 2 val tiny demo images, 3 of the 5 classes."""
    root = str(tmp_path_factory.mktemp('task3'))
    generate_demo_dataset(root, seed=1, num_train=4, num_val=2,
                          img_size=(96, 96))
    for split in ('train', 'val'):
        coco_subset(f'{root}/annotations/instances_{split}.json',
                    f'{root}/annotations/shapes3_{split}.json', CLASSES)
    return root + '/'


def _converted(golden_dir, tmp_path_factory, variant, name):
    dst = str(tmp_path_factory.mktemp('ckpt') / f'{variant}.pth')
    convert_official_checkpoint(
        osp.join(golden_dir, name), dst,
        Config.fromfile(variant_config(variant)).model)
    return dst


@pytest.fixture(scope='module')
def t_ckpt(golden_dir, tmp_path_factory):
    return _converted(golden_dir, tmp_path_factory, 't', 'T_ckpt_fp16.pth')


def _tiny(pipeline):
    """The config's transforms at 64 px."""
    out = []
    for t in pipeline:
        t = copy.deepcopy(t)
        if 'img_scale' in t:
            t['img_scale'] = SIZE
        if t['type'] == 'Resize':
            t['scale'] = SIZE
        out.append(t)
    return out


def _cfg(task_root, load_from, work_dir):
    """The fine-tuning example with the data fields of the "your data"
    block pointed at the task, 64 px inputs and one epoch of 2 iterations."""
    cfg = Config.fromfile(CONFIG)
    assert cfg.model.bbox_head.num_classes == len(cfg.metainfo['classes'])
    metainfo = dict(classes=CLASSES)
    train = cfg.train_dataloader
    train.update(batch_size=2, num_workers=0, persistent_workers=False)
    train.dataset.pipeline = _tiny(train.dataset.pipeline)
    train.dataset.dataset.update(
        data_root=task_root, metainfo=metainfo,
        ann_file='annotations/shapes3_train.json',
        data_prefix=dict(img='train/'))
    for name in ('val_dataloader', 'test_dataloader'):
        loader = cfg[name]
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        loader.dataset.update(
            data_root=task_root, metainfo=metainfo,
            ann_file='annotations/shapes3_val.json',
            data_prefix=dict(img='val/'),
            pipeline=_tiny(loader.dataset.pipeline))
    for name in ('val_evaluator', 'test_evaluator'):
        cfg[name].ann_file = task_root + 'annotations/shapes3_val.json'
    for hook in cfg.custom_hooks:
        if hook['type'] == 'PipelineSwitchHook':
            hook['switch_pipeline'] = _tiny(hook['switch_pipeline'])
    cfg.train_cfg.update(max_epochs=1, val_interval=1,
                         dynamic_intervals=None)
    cfg.param_scheduler = cfg.param_scheduler[:1]  # the warm-up epoch
    cfg.auto_scale_lr.enable = False
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 1
    # every box scored: a model 2 steps into training scores below 0.05
    cfg.model.test_cfg.score_thr = 0.0
    cfg.update(load_from=load_from, work_dir=work_dir, log_level='WARNING')
    return cfg


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread (a busy 2-core machine: two OpenMP threads per
    process wait on each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class _Capture(logging.Handler):

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


class _CheckLoaded(Hook):
    """Before the first step: what came from the checkpoint."""

    def __init__(self, ckpt):
        self.ckpt = ckpt
        self.checked = False

    def before_train(self, runner):
        state = runner.model.state_dict()
        for key, value in self.ckpt.items():
            if key in CLASS_KEYS:
                continue
            assert torch.equal(state[key], value.to(state[key].dtype)), key
        head = runner.model.bbox_head
        for lvl in range(3):
            assert head.gfl_cls[lvl].weight.shape[0] == len(CLASSES)
            # re-initialised: the prior bias (p = 0.01), small weights
            torch.testing.assert_close(
                head.gfl_cls[lvl].bias,
                torch.full((3, ), -4.59512), atol=1e-4, rtol=0)
            assert float(head.gfl_cls[lvl].weight.detach().std()) < 0.02
        self.checked = True


def test_official_checkpoint_fine_tunes_to_3_classes(task_root, t_ckpt,
                                                     tmp_path):
    work_dir = str(tmp_path / 'ft')
    runner = Runner.from_cfg(_cfg(task_root, t_ckpt, work_dir))
    capture = _Capture()
    runner.logger.addHandler(capture)
    ckpt = torch.load(t_ckpt, weights_only=True)['state_dict']
    assert CLASS_KEYS <= set(ckpt) and ckpt[
        'bbox_head.gfl_cls.0.bias'].shape == (80, )
    check = _CheckLoaded(ckpt)
    runner.register_hook(check)
    try:
        runner.train()
    finally:
        runner.logger.removeHandler(capture)
    assert check.checked

    # the log names exactly the class layers, with both shapes, for the
    # model and its EMA copy
    skipped = [line for line in capture.lines
               if 'partial_load:' in line and 'not loaded' in line]
    assert len(skipped) == 2, capture.lines
    for line in skipped:
        assert line.startswith('partial_load: 6 keys not loaded'), line
        names = set(re.findall(r'(bbox_head\.[\w.]+) \(checkpoint', line))
        assert names == CLASS_KEYS, line
        assert 'bbox_head.gfl_cls.0.bias (checkpoint (80,) model (3,))' \
            in line
    # 2 iterations, a checkpoint, an evaluation
    assert runner.iter == 2
    saved = osp.join(work_dir, 'epoch_1.pth')
    assert osp.isfile(saved)
    assert torch.load(saved, weights_only=True)['state_dict'][
        'bbox_head.gfl_cls.2.weight'].shape[0] == 3
    metrics = runner.val_loop.run()
    assert 0.0 <= metrics['coco/bbox_mAP'] <= 1.0
    assert 0.0 <= metrics['coco/bbox_mAP_50'] <= 1.0

    # the fine-tuned checkpoint loads whole (the class layers fit now) and
    # evaluates the same as the end of training
    test_cfg = _cfg(task_root, saved, str(tmp_path / 'test'))
    tester = Runner.from_cfg(test_cfg)
    capture = _Capture()
    tester.logger.addHandler(capture)
    try:
        tested = tester.test()
    finally:
        tester.logger.removeHandler(capture)
    assert not any('not loaded' in line for line in capture.lines)
    assert tested['coco/bbox_mAP'] == pytest.approx(metrics['coco/bbox_mAP'])


def test_checkpoint_of_another_variant_is_refused(task_root, golden_dir,
                                                  tmp_path_factory,
                                                  tmp_path):
    ns_ckpt = _converted(golden_dir, tmp_path_factory, 'ns',
                         'Ns_ckpt_fp16.pth')
    runner = Runner.from_cfg(_cfg(task_root, ns_ckpt, str(tmp_path)))
    with pytest.raises(StateDictMismatchError) as err:
        runner.train()
    text = str(err.value)
    assert 'does not fit this DAMO-YOLO model' in text
    assert "the checkpoint fits the released variant 'ns'" in text
    assert "the model is 't'" in text
    assert runner.iter == 0
