"""The detection config a search emits builds and trains."""
import math
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from damoyolo_mm.nas import NASSearchRunner
from damoyolo_mm.nas import load_search_structure as load_structure

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_emitted_config_builds_and_trains_two_iterations(tmp_path,
                                                         demo_data_root,
                                                         monkeypatch):
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'nas',
                                   'damoyolo_t_search.py'))
    cfg.work_dir = str(tmp_path / 'search')
    cfg.search.update(num_candidates=1500, popu_size=64, progress=False,
                      plot=False, save_candidates=False)
    result = NASSearchRunner.from_cfg(cfg).run()
    det_path = result['files']['detection_config']
    assert det_path.endswith('damoyolo_t_nas_coco.py')

    det = Config.fromfile(det_path)
    assert det.model.backbone.type == 'TinyNASRes'  # from the T config
    assert load_structure(det.model.backbone.structure) == \
        result['structure']
    text = open(det_path).read()
    assert "{'class': 'SuperResConvK1KX', 'in': " in text  # spec shown

    # the inline variant builds the same backbone
    from mmdet.registry import MODELS
    cfg.outputs.detection_config.inline_structure = True
    cfg.work_dir = str(tmp_path / 'inline')
    inline = NASSearchRunner.from_cfg(cfg).run()
    det_inline = Config.fromfile(inline['files']['detection_config'])
    assert isinstance(det_inline.model.backbone.structure, list)
    assert load_structure(det_inline.model.backbone.structure) == \
        result['structure']
    bb = MODELS.build(det_inline.model.backbone)
    feats = bb(torch.zeros(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == det_inline.model.neck.in_channels

    from damoyolo_mm.datasets.demo_data import DEMO_CLASSES
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=(96, 96), keep_ratio=False),
        dict(type='PackDetInputs')
    ]
    det.model.bbox_head.num_classes = len(DEMO_CLASSES)
    det.train_dataloader = dict(
        batch_size=1, num_workers=0, persistent_workers=False,
        sampler=dict(type='DefaultSampler', shuffle=False),
        batch_sampler=None,
        dataset=dict(type='CocoDataset', data_root=demo_data_root,
                     metainfo=dict(classes=DEMO_CLASSES),
                     ann_file='annotations/instances_train.json',
                     data_prefix=dict(img='train/'), indices=2,
                     filter_cfg=dict(filter_empty_gt=True, min_size=4),
                     pipeline=pipeline))
    det.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1,
                         val_interval=10)
    det.val_dataloader = det.val_cfg = det.val_evaluator = None
    det.test_dataloader = det.test_cfg = det.test_evaluator = None
    det.custom_hooks = [h for h in det.custom_hooks
                        if h['type'] in ('CheckFiniteLossHook', 'EMAHook')]
    det.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    det.default_hooks.logger = dict(type='LoggerHook', interval=1)
    det.default_hooks.pop('visualization', None)
    det.auto_scale_lr = dict(enable=False, base_batch_size=64)
    det.work_dir = str(tmp_path / 'train')
    det.log_level = 'WARNING'

    # the Runner logs and dumps the config text; skip only yapf's slow
    # pretty-printing (the dumped text is parsed below)
    import mmengine.config.config as mm_config
    monkeypatch.setattr(mm_config, 'FormatCode',
                        lambda text, style_config=None: (text, None))
    torch.manual_seed(0)
    runner = Runner.from_cfg(det)
    model = runner.model
    backbone = model.backbone
    outs = [b['out'] for b in result['structure']]
    assert list(backbone.out_channels) == [outs[i] for i in (2, 4, 5)]
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    losses = []

    from mmengine.hooks import Hook

    class Record(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            losses.append(float(outputs['loss'].detach()))

    runner.register_hook(Record(), priority='LOWEST')
    runner.train()
    assert runner.iter == 2
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    after = model.state_dict()
    changed = [k for k in before if 'backbone' in k and
               before[k].dtype.is_floating_point and
               not torch.equal(before[k], after[k])]
    assert changed  # the searched backbone was trained
    import ast
    import glob
    dumped = glob.glob(osp.join(det.work_dir, '*.py'))
    assert dumped
    ast.parse(open(dumped[0]).read())  # the dumped config is valid python
