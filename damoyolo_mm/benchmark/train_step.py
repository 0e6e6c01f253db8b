"""One DAMO-YOLO training step, timed part by part, for ours and (on the same
batch) the official implementation.

Parts (milliseconds per iteration; median over the timed iterations):

* ``data``     - the config's train pipeline + collate for one batch
  (``data='config'``, in this process, no workers) and the model's
  data_preprocessor; with ``data='synthetic'`` only the preprocessor
* ``forward``  - backbone + neck + head convolutions
* ``assign``   - label assignment (AlignOTA), timed inside the loss
* ``loss``     - the rest of the loss (decoding, QFL, GIoU, DFL)
* ``backward`` - ``loss.backward()``
* ``optim``    - optimizer step + zero_grad
* ``ema``      - EMA update of the weights

The official model, optimizer and EMA are built the way its trainer builds
them, inside :func:`~.official_code.official_code`.
"""
import copy
import math
import os.path as osp
import time
import types
from typing import Callable, Optional

import numpy as np
import torch

from damoyolo_mm.variants import official_config_name, variant_of_config
from .official_code import official_code, official_config_path
from .timing import PartClock, load_average, machine_info

PARTS = ('data', 'forward', 'assign', 'loss', 'backward', 'optim', 'ema')
#: parts of the step proper (``data`` excluded)
STEP_PARTS = PARTS[1:]


def synthetic_batch(batch_size: int, size: int, num_gts: int,
                    num_classes: int, seed: int):
    """Smooth random RGB images (0..255) and random boxes."""
    gen = torch.Generator().manual_seed(seed)
    low = torch.rand(batch_size, 3, 8, 8, generator=gen) * 255
    images = torch.nn.functional.interpolate(
        low, size=(size, size), mode='bilinear', align_corners=False)
    images = (images + torch.randn(images.shape, generator=gen) * 10).clamp(
        0, 255).round()
    boxes, labels = [], []
    for _ in range(batch_size):
        wh = torch.rand(num_gts, 2, generator=gen) * (size / 2 - 12) + 12
        xy = torch.rand(num_gts, 2, generator=gen) * (size - wh)
        boxes.append(torch.cat([xy, xy + wh], 1).round())
        labels.append(
            torch.randint(0, num_classes, (num_gts, ), generator=gen))
    return images, boxes, labels


def config_memory_format(cfg) -> str:
    """The memory format a training run of ``cfg`` uses."""
    for hook in cfg.get('custom_hooks', []):
        if hook.get('type') == 'MemoryFormatHook':
            return hook.get('memory_format', 'channels_last')
    return 'contiguous'


def _timed_loss(clock: PartClock, loss_fn, *args, **kwargs):
    """Run ``loss_fn``; add its time minus the assigner's to ``loss``.
    Returns (output, elapsed seconds)."""
    start = time.perf_counter()
    before = clock.current['assign']
    out = loss_fn(*args, **kwargs)
    elapsed = time.perf_counter() - start
    clock.current['loss'] += elapsed - (clock.current['assign'] - before)
    return out, elapsed


class OurTrainStep:
    """One training step of our model with timers around its parts."""

    def __init__(self, cfg, clock: PartClock, memory_format: str,
                 with_ema: bool = True, loader=None):
        from mmdet.registry import MODELS
        from mmengine.optim import build_optim_wrapper

        self.clock = clock
        self.model = MODELS.build(cfg.model)
        self.model.init_weights()
        self.model.train()
        if memory_format == 'channels_last':
            self.model.to(memory_format=torch.channels_last)
        self.head = self.model.bbox_head
        self.optim_wrapper = build_optim_wrapper(
            self.model, copy.deepcopy(cfg.optim_wrapper))
        self.ema = None
        if with_ema:
            from damoyolo_mm.engine import DAMOYOLOEMA
            self.ema = DAMOYOLOEMA(self.model, momentum=0.0002, gamma=2000)
        # time the assigner inside the loss
        self.head.assigner.batch_assign = clock.wrap(
            self.head.assigner.batch_assign, 'assign')
        self.loader = iter_forever(loader) if loader is not None else None

    @staticmethod
    def batch_from(images, boxes, labels):
        from mmdet.structures import DetDataSample
        from mmengine.structures import InstanceData
        samples = []
        size = tuple(images.shape[-2:])
        for b, l in zip(boxes, labels):
            sample = DetDataSample(
                metainfo=dict(img_shape=size, batch_input_shape=size))
            sample.gt_instances = InstanceData(bboxes=b.clone(),
                                               labels=l.clone())
            samples.append(sample)
        return images.clone(), samples

    def __call__(self, images=None, boxes=None, labels=None):
        clock = self.clock
        with clock.part('data'):
            if self.loader is not None:
                data = self.model.data_preprocessor(next(self.loader), True)
                inputs, samples = data['inputs'], data['data_samples']
            else:
                inputs, samples = self.batch_from(images, boxes, labels)
        with clock.part('forward'):
            outs = self.head(self.model.extract_feat(inputs))
        losses, _ = _timed_loss(clock, self.head.loss_by_feat, *outs,
                                [s.gt_instances for s in samples],
                                [s.metainfo for s in samples])
        with clock.part('loss'):
            loss, log_vars = self.model.parse_losses(losses)
        with clock.part('backward'):
            loss.backward()
        with clock.part('optim'):
            self.optim_wrapper.step()
            self.optim_wrapper.zero_grad()
        if self.ema is not None:
            with clock.part('ema'):
                self.ema.update_parameters(self.model)
        return {k: float(v) for k, v in log_vars.items()}


def build_train_loader(cfg, batch_size: int, seed: int):
    """The config's train dataloader, in this process (no workers)."""
    from mmengine.runner import Runner
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    loader_cfg.update(
        batch_size=batch_size, num_workers=0, persistent_workers=False)
    loader_cfg.pop('prefetch_factor', None)
    return Runner.build_dataloader(loader_cfg, seed=seed)


def iter_forever(loader):
    while True:
        for batch in loader:
            yield batch


class OfficialTrainStep:
    """One step of the official trainer with the same timers."""

    def __init__(self, root: str, config: str, num_classes: int,
                 clock: PartClock, with_ema: bool):
        self.clock = clock
        cfg_path = official_config_path(root, config)
        with official_code(root) as env:
            self.stubs = env.stubs
            from damo.apis.detector_trainer import Trainer, ema_model
            from damo.config.base import parse_config
            from damo.detectors.detector import build_local_model
            from damo.structures.bounding_box import BoxList
            from damo.structures.image_list import to_image_list
            cfg = parse_config(cfg_path)
            if cfg.model.head.num_classes != num_classes:
                cfg.model.head.num_classes = num_classes
            self.BoxList, self.to_image_list = BoxList, to_image_list
            torch.manual_seed(0)
            self.model = build_local_model(cfg, 'cpu')
            self.model.train()
            # the trainer's optimizer (no decay on norms / biases) and EMA
            self.optimizer = Trainer.build_optimizer(
                None, self.model, copy.deepcopy(cfg.train.optimizer))
            self.ema = ema_model(self.model, cfg.train.ema_momentum) \
                if with_ema else None
        self.iter = 0
        head = self.model.head
        head.assigner.assign = clock.wrap(head.assigner.assign, 'assign')
        self._head_loss = head.loss
        head.loss = self._timed_head_loss
        self._loss_time = 0.

    def _timed_head_loss(self, *args, **kwargs):
        out, self._loss_time = _timed_loss(self.clock, self._head_loss,
                                           *args, **kwargs)
        return out

    def __call__(self, images, boxes, labels):
        clock = self.clock
        size = tuple(images.shape[-2:])
        with clock.part('data'):
            targets = []
            for b, l in zip(boxes, labels):
                t = self.BoxList(b.clone(), (size[1], size[0]), mode='xyxy')
                t.add_field('labels', l.clone())
                targets.append(t)
            image_list = self.to_image_list(images.clone())
        with clock.part('forward'):
            fpn = self.model.neck(self.model.backbone(image_list.tensors))
        start = time.perf_counter()
        self._loss_time = 0.
        outputs = self.model.head(fpn, targets, imgs=image_list)
        clock.current['forward'] += (time.perf_counter() - start -
                                     self._loss_time)
        with clock.part('backward'):
            self.optimizer.zero_grad()
            outputs['total_loss'].backward()
        with clock.part('optim'):
            self.optimizer.step()
        if self.ema is not None:
            with clock.part('ema'):
                self.ema.update(self.iter,
                                types.SimpleNamespace(module=self.model))
        self.iter += 1
        return {k: float(v) for k, v in outputs.items()}


def official_config_for(config: str) -> Optional[str]:
    """Official config file name of one of our variant configs (None for
    another config)."""
    variant = variant_of_config(config)
    return official_config_name(variant) if variant else None


def benchmark_train(cfg, config: str, batch_size: int = 8,
                    size: Optional[int] = None, iters: int = 10,
                    warmup: int = 2, data: str = 'synthetic',
                    num_gts: int = 8, memory_format: Optional[str] = None,
                    with_ema: bool = True,
                    official_root: Optional[str] = None,
                    official_config: Optional[str] = None, seed: int = 0,
                    on_start: Optional[Callable[[dict], None]] = None
                    ) -> dict:
    """Time ``iters`` training steps of the model of ``cfg`` (and of the
    official one on the same batches with ``official_root``).

    ``on_start`` receives the settings (and ``machine``, ``reference``)
    once both models are built, before the timed iterations.

    Returns:
        dict: settings, ``machine``, ``ours`` / ``official`` (median ms per
        part and ``total``), ``ratio_step`` and ``ratio_assign`` (ours /
        official) and ``last_losses``.
    """
    torch.manual_seed(seed)
    np.random.seed(seed)
    if size is None:
        size = int(cfg.get('img_scale', cfg.get('input_size', (640, 640)))[0])
    num_classes = int(cfg.model.bbox_head.num_classes)
    memory_format = memory_format or config_memory_format(cfg)
    results = dict(machine=machine_info(), config=config,
                   batch_size=batch_size, img_size=size,
                   memory_format=memory_format, data=data, iters=iters,
                   warmup=warmup)
    loader = build_train_loader(cfg, batch_size, seed) \
        if data == 'config' else None
    ours_clock = PartClock(PARTS)
    ours = OurTrainStep(cfg, ours_clock, memory_format, with_ema, loader)
    official = None
    if official_root:
        ref_cfg = official_config or official_config_for(config)
        if ref_cfg is None:
            raise ValueError(f'no official config known for '
                             f'{osp.basename(config)!r}; pass one')
        off_clock = PartClock(PARTS)
        official = OfficialTrainStep(official_root, ref_cfg, num_classes,
                                     off_clock, with_ema)
        results['reference'] = dict(root=official_root, config=ref_cfg,
                                    stand_ins=official.stubs)
    if on_start is not None:
        on_start(results)
    images, boxes, labels = synthetic_batch(batch_size, size, num_gts,
                                            num_classes, seed)
    last = {}
    for it in range(warmup + iters):
        record = it >= warmup
        last['ours'] = ours(images, boxes, labels)
        ours_clock.end_iter(record)
        if official is not None:
            last['official'] = official(images, boxes, labels)
            off_clock.end_iter(record)
    results.update(ours=ours_clock.summary(), last_losses=last)
    results['machine']['loadavg_1m_after'] = load_average()
    if official is not None:
        o = results['ours']
        r = results['official'] = off_clock.summary()
        results['ratio_step'] = sum(o.get(p, 0.) for p in STEP_PARTS) / sum(
            r.get(p, 0.) for p in STEP_PARTS)
        results['ratio_assign'] = o['assign'] / r['assign'] if r.get(
            'assign') else math.nan
    return results
