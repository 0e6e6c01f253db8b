"""Shared helpers of the projects/ tests: config locations, tiny-run
settings, a fixed demo batch, prediction checks."""
import copy
import glob
import math
import os.path as osp
from typing import Dict, List

import torch
from torch.nn.modules.batchnorm import _BatchNorm

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PROJECTS_DIR = osp.join(REPO_ROOT, 'projects')
PROJECTS = ('repgfpn_retinanet', 'tinynas_faster_rcnn', 'zerohead_resnet')


def project_config(project: str, name: str) -> str:
    return osp.join(PROJECTS_DIR, project, 'configs', name)


#: the COCO variant of each project (what users copy)
COCO_CONFIGS = {
    'repgfpn_retinanet':
    project_config('repgfpn_retinanet', 'retinanet_r18_repgfpn_1x_coco.py'),
    'tinynas_faster_rcnn_l20':
    project_config('tinynas_faster_rcnn',
                   'faster-rcnn_tinynas-l20_fpn_1x_coco.py'),
    'tinynas_faster_rcnn_nas':
    project_config('tinynas_faster_rcnn',
                   'faster-rcnn_tinynas-nas_fpn_1x_coco.py'),
    'zerohead_resnet':
    project_config('zerohead_resnet', 'zerohead-alignota_r18_fpn_1x_coco.py'),
}
#: the demo-data variant of each project (what the tests train)
DEMO_CONFIGS = {
    'repgfpn_retinanet':
    project_config('repgfpn_retinanet', 'retinanet_r18_repgfpn_demo.py'),
    'tinynas_faster_rcnn_l20':
    project_config('tinynas_faster_rcnn',
                   'faster-rcnn_tinynas-l20_fpn_demo.py'),
    'tinynas_faster_rcnn_nas':
    project_config('tinynas_faster_rcnn',
                   'faster-rcnn_tinynas-nas_fpn_demo.py'),
    'zerohead_resnet':
    project_config('zerohead_resnet', 'zerohead-alignota_r18_fpn_demo.py'),
}
NAS_SEARCH_CONFIG = project_config(
    'tinynas_faster_rcnn', 'mae-nas_k1kx_frcnn-t-budget_search.py')
NAS_STRUCTURE = osp.join(PROJECTS_DIR, 'tinynas_faster_rcnn', 'structures',
                         'tinynas_nas_k1kx_frcnn.txt')


def detection_configs() -> List[str]:
    """Every detector config under projects/ (search configs excluded)."""
    files = sorted(glob.glob(osp.join(PROJECTS_DIR, '*', 'configs', '*.py')))
    return [f for f in files if not f.endswith('_search.py')]


def num_classes_of(model_cfg) -> int:
    if 'roi_head' in model_cfg:
        return model_cfg.roi_head.bbox_head.num_classes
    return model_cfg.bbox_head.num_classes


def _resize_index(pipeline) -> int:
    idx = [i for i, t in enumerate(pipeline) if t['type'] == 'Resize']
    assert len(idx) == 1, pipeline
    return idx[0]


def tiny_run_options(cfg, data_root: str, scale: int = 96,
                     num_train: int = 4, num_val: int = 2,
                     validate: bool = False) -> List[str]:
    """``--cfg-options`` of a tiny run of a demo config: the given data
    root, ``num_train`` training images in batches of 2 (2 iterations),
    ``scale`` px input, one epoch; with ``validate`` a validation pass on
    ``num_val`` images follows."""
    tr = _resize_index(cfg.train_dataloader.dataset.pipeline)
    va = _resize_index(cfg.val_dataloader.dataset.pipeline)
    ann_val = osp.join(data_root, 'annotations', 'instances_val.json')
    opts = {
        'train_dataloader.dataset.data_root': data_root,
        'val_dataloader.dataset.data_root': data_root,
        'test_dataloader.dataset.data_root': data_root,
        'val_evaluator.ann_file': ann_val,
        'test_evaluator.ann_file': ann_val,
        'train_dataloader.batch_size': 2,
        'train_dataloader.dataset.indices': num_train,
        'val_dataloader.dataset.indices': num_val,
        f'train_dataloader.dataset.pipeline.{tr}.scale': f'({scale},{scale})',
        f'val_dataloader.dataset.pipeline.{va}.scale': f'({scale},{scale})',
        'train_cfg.max_epochs': 1,
        'train_cfg.val_interval': 1,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': 1,
        'log_processor.window_size': 1,
        'randomness.seed': 0,
    }
    if not validate:  # the loop validates after the last epoch otherwise
        opts.update({'val_dataloader': None, 'val_cfg': None,
                     'val_evaluator': None})
    return [f'{k}={v}' for k, v in opts.items()]


def fixed_demo_batch(cfg, data_root: str, scale: int = 96,
                     batch_size: int = 2) -> Dict:
    """The first ``batch_size`` training samples of the demo data through
    the config's own training pipeline, resized to ``scale`` px."""
    from mmengine.runner import Runner, set_random_seed
    set_random_seed(0)  # the pipeline's random flip draws from numpy
    dl = copy.deepcopy(cfg.train_dataloader)
    dl.dataset.data_root = data_root
    dl.dataset.pipeline[_resize_index(dl.dataset.pipeline)]['scale'] = (
        scale, scale)
    dl.batch_size = batch_size
    dl.num_workers = 0
    dl.persistent_workers = False
    dl.sampler = dict(type='DefaultSampler', shuffle=False)
    dl.pop('batch_sampler', None)
    loader = Runner.build_dataloader(dl, seed=0)
    return next(iter(loader))


def batch_loss(model, batch, seed: int = 0) -> float:
    """Total loss of ``batch`` in training mode without updating anything
    (the seed fixes the samplers of two-stage heads)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        data = model.data_preprocessor(batch, True)
        losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
    return float(loss)


def recalibrate_bn(model, batch) -> None:
    """Set every BN layer's running statistics to the statistics of
    ``batch`` (cumulative average over one pass, as precise-BN does).

    After a handful of steps from random init the running statistics
    (momentum 0.03 / 0.1) are still mostly their initial values, so eval
    mode would see differently scaled features than the steps did.
    """
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        data = model.data_preprocessor(batch, True)
        model(**data, mode='tensor')
    for m, mom in zip(bns, saved):
        m.momentum = mom
    model.eval()


def check_predictions(results, num_classes: int, batch) -> int:
    """Assert DetDataSample predictions are valid; return the box count."""
    from mmdet.structures import DetDataSample
    assert len(results) == len(batch['data_samples'])
    total = 0
    for res in results:
        assert isinstance(res, DetDataSample), type(res)
        pred = res.pred_instances
        n = len(pred)
        assert pred.bboxes.shape == (n, 4), pred.bboxes.shape
        assert pred.scores.shape == (n, ) and pred.labels.shape == (n, )
        assert torch.isfinite(pred.bboxes).all()
        assert ((pred.scores >= 0) & (pred.scores <= 1)).all()
        assert pred.labels.dtype == torch.long
        assert ((pred.labels >= 0) & (pred.labels < num_classes)).all()
        # boxes are x1y1x2y2 in the original image frame
        assert (pred.bboxes[:, 2] >= pred.bboxes[:, 0]).all()
        assert (pred.bboxes[:, 3] >= pred.bboxes[:, 1]).all()
        total += n
    return total


def is_finite(x: float) -> bool:
    return isinstance(x, float) and math.isfinite(x)
