"""projects/: layout, configs (mmdet bases + custom_imports, no download),
model builds, and the NAS-searched structure file."""
import os
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config

from projects_helpers import (COCO_CONFIGS, DEMO_CONFIGS, NAS_SEARCH_CONFIG,
                              NAS_STRUCTURE, PROJECTS, PROJECTS_DIR,
                              REPO_ROOT, detection_configs, num_classes_of)


def _build(model_cfg):
    from mmdet.registry import MODELS
    return MODELS.build(model_cfg)


@pytest.mark.parametrize('project', PROJECTS)
def test_project_layout(project):
    root = osp.join(PROJECTS_DIR, project)
    with open(osp.join(root, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    configs = sorted(os.listdir(osp.join(root, 'configs')))
    demo = [c for c in configs if c.endswith('_demo.py')]
    coco = [c for c in configs if c.endswith('_coco.py')]
    assert demo and coco, configs
    # the README documents every config it ships
    for c in configs:
        if c.endswith('.py'):
            assert c in readme, f'{c} not mentioned in {project}/README.md'


def test_config_basenames_unique():
    """mim finds configs by file name across configs/ and projects/."""
    seen = {}
    for top in ('configs', 'projects'):
        for dirpath, _, files in os.walk(osp.join(REPO_ROOT, top)):
            if '_base_' in dirpath:
                continue
            for f in files:
                if f.endswith('.py'):
                    assert f not in seen, (f, seen[f], dirpath)
                    seen[f] = dirpath
    assert len([d for d in seen.values() if 'projects' in d]) >= 8


def test_coco_configs_inherit_mmdet_directly():
    for path in COCO_CONFIGS.values():
        with open(path, encoding='utf-8') as f:
            text = f.read()
        base = re.search(r"^_base_ = '([^']+)'", text, re.M)
        assert base, path
        if base.group(1).startswith('./'):  # a variant of a sibling
            parent = osp.join(osp.dirname(path), base.group(1))
            with open(parent, encoding='utf-8') as f:
                base = re.search(r"^_base_ = '([^']+)'", f.read(), re.M)
        assert base.group(1).startswith('mmdet::'), (path, base.group(1))


@pytest.mark.parametrize('path', detection_configs() + [NAS_SEARCH_CONFIG],
                         ids=lambda p: osp.basename(p))
def test_configs_hold_settings_only(path):
    """No adapter code in project configs: no imports, functions,
    classes; our modules come in through custom_imports."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    assert not re.search(r'^\s*(import|from|def|class|lambda)\s', text,
                         re.M), path
    assert 'custom_imports' in text or re.search(
        r"^_base_ = \[?\s*'\./", text, re.M), path


@pytest.mark.parametrize('path', detection_configs(),
                         ids=lambda p: osp.basename(p))
def test_config_builds_without_download(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdet'
    assert 'damoyolo_mm' in cfg.custom_imports['imports']
    assert cfg.custom_imports['allow_failed_imports'] is False
    text = cfg.pretty_text
    assert 'torchvision://' not in text and 'https://' not in text and \
        'http://' not in text, f'{path} points at a download'
    assert cfg.model.backbone.get('init_cfg') is None
    model = _build(cfg.model)
    if not path.endswith('_demo.py'):
        model.init_weights()  # would try to download with a remote init
    n_cls = num_classes_of(cfg.model)
    if path.endswith('_demo.py'):
        from damoyolo_mm.datasets.demo_data import DEMO_CLASSES
        assert n_cls == len(DEMO_CLASSES)
        for dl in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            assert tuple(cfg[dl].dataset.metainfo.classes) == DEMO_CLASSES
        assert cfg.train_dataloader.dataset.data_root == 'data/demo/'
        # a small input: 256-320 px
        sizes = [t['scale'] for t in cfg.train_dataloader.dataset.pipeline
                 if t['type'] == 'Resize']
        assert sizes and all(256 <= max(s) <= 320 for s in sizes), sizes
        # trained from scratch: nothing frozen
        assert cfg.model.backbone.get('frozen_stages', -1) == -1
        assert not cfg.model.backbone.get('norm_eval', False)
    else:
        assert n_cls == 80
        assert cfg.train_dataloader.dataset.data_root == 'data/coco/'
    # the neck reads exactly what the backbone gives
    neck_cfg = cfg.model.neck
    first_neck = neck_cfg[0] if isinstance(neck_cfg, list) else neck_cfg
    if hasattr(model.backbone, 'out_channels'):
        assert list(first_neck.in_channels) == list(
            model.backbone.out_channels)
    x = torch.rand(1, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(x)
    assert all(torch.isfinite(f).all() for f in feats)


def test_retinanet_project_uses_repgfpn():
    from damoyolo_mm.models.necks import RepGFPN
    cfg = Config.fromfile(COCO_CONFIGS['repgfpn_retinanet'])
    model = _build(cfg.model)
    assert isinstance(model.neck[0], RepGFPN)
    assert type(model).__name__ == 'RetinaNet'
    assert type(model.bbox_head).__name__ == 'RetinaHead'
    # the stock five-level head (P3-P7) is kept
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(torch.rand(1, 3, 256, 256))
    assert [tuple(f.shape[1:]) for f in feats] == [(256, 32, 32),
                                                    (256, 16, 16),
                                                    (256, 8, 8), (256, 4, 4),
                                                    (256, 2, 2)]


@pytest.mark.parametrize('key,channels', [
    ('tinynas_faster_rcnn_l20', [64, 96, 192, 384]),
    ('tinynas_faster_rcnn_nas', [40, 96, 192, 384]),
])
def test_faster_rcnn_project_uses_tinynas(key, channels):
    from damoyolo_mm.models.backbones import TinyNASRes
    cfg = Config.fromfile(COCO_CONFIGS[key])
    model = _build(cfg.model)
    assert type(model).__name__ == 'FasterRCNN'
    assert isinstance(model.backbone, TinyNASRes)
    assert model.backbone.out_channels == channels
    model.eval()
    with torch.no_grad():
        feats = model.backbone(torch.rand(1, 3, 128, 128))
    assert [f.shape[1] for f in feats] == channels
    assert [128 // f.shape[-1] for f in feats] == [4, 8, 16, 32]
    if key.endswith('_nas'):
        assert osp.samefile(cfg.model.backbone.structure, NAS_STRUCTURE)


def test_zerohead_project_uses_zerohead_alignota():
    from damoyolo_mm.models.dense_heads import ZeroHead
    from damoyolo_mm.models.task_modules.assigners import AlignOTAAssigner
    cfg = Config.fromfile(COCO_CONFIGS['zerohead_resnet'])
    model = _build(cfg.model)
    assert type(model.backbone).__name__ == 'ResNet'
    assert model.backbone.depth == 18
    assert type(model.neck).__name__ == 'FPN'
    assert isinstance(model.bbox_head, ZeroHead)
    assert isinstance(model.bbox_head.assigner, AlignOTAAssigner)
    assert model.bbox_head.strides == [8, 16, 32, 64, 128]


def test_nas_structure_is_the_runner_output(tmp_path):
    """The shipped structure is what the project's search config finds
    (the search is deterministic), is in the NAS output format, and stays
    inside the budget of the official T backbone with a higher score."""
    from mmengine.registry import RUNNERS

    import damoyolo_mm.nas as nas
    from damoyolo_mm.models.backbones import load_structure
    cfg = Config.fromfile(NAS_SEARCH_CONFIG)
    cfg.work_dir = str(tmp_path)
    result = RUNNERS.build(cfg).run()
    out = osp.join(str(tmp_path), 'best_structure.txt')
    assert result['files']['best_structure'] == out
    found = load_structure(out)
    shipped = load_structure(NAS_STRUCTURE)
    assert shipped == found
    with open(NAS_STRUCTURE, encoding='utf-8') as f:
        shipped_text = f.read()
    with open(out, encoding='utf-8') as f:
        assert f.read() == shipped_text  # byte-identical runner output
    assert shipped[0]['in'] == 3  # detector format (stem reads RGB)
    weights = list(cfg.score.stage_weights)
    ours = nas.score(shipped, stage_weights=weights)
    official = nas.score('tinynas_L20_k1kx', stage_weights=weights)
    assert ours == pytest.approx(result['score'], rel=1e-9)
    assert ours > official
    cost = nas.count(shipped, image_size=cfg.search_space.image_size)
    assert cost['layers'] <= cfg.budgets.layers
    assert cost['params'] <= cfg.budgets.params
    assert cost['flops'] <= cfg.budgets.flops
