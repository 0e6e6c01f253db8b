"""Time one DAMO-YOLO training step, split into its parts.

Parts (milliseconds per iteration; median over the timed iterations):

* ``data``     - the config's train pipeline + collate for one batch
  (``--data config``, in this process, no workers) and the model's
  data_preprocessor; with ``--data synthetic`` only the preprocessor
* ``forward``  - backbone + neck + head convolutions
* ``assign``   - label assignment (AlignOTA), timed inside the loss
* ``loss``     - the rest of the loss (decoding, QFL, GIoU, DFL)
* ``backward`` - ``loss.backward()``
* ``optim``    - optimizer step + zero_grad
* ``ema``      - EMA update of the weights

With ``--official-root`` the same batch (same input tensor and boxes) is
also fed to the reference DAMO-YOLO implementation (its model, optimizer and
EMA built the way its trainer builds them), iterations of both interleaved,
and the ratios ours / official are printed. The reference imports
torchvision, loguru, easydict and thop at import time; minimal in-memory
stand-ins for them are installed only for that comparison (nothing they
would do is used by a training step).

Examples::

    python tools/benchmark_train.py configs/damoyolo_t_coco.py \
        --batch-size 8 --img-size 320 --threads 2 \
        --official-root ../DAMO-YOLO   # a checkout of tinyvision/DAMO-YOLO
    python tools/benchmark_train.py configs/quickstart/damoyolo_quickstart.py \
        --data config --batch-size 8 --memory-format channels_last
"""
import argparse
import contextlib
import copy
import json
import math
import os
import os.path as osp
import platform
import statistics
import sys
import time
import types
from collections import defaultdict
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

PARTS = ('data', 'forward', 'assign', 'loss', 'backward', 'optim', 'ema')

# the reference config of each of our variant configs
OFFICIAL_CONFIGS = {
    'damoyolo_ns_coco': 'damoyolo_tinynasL18_Ns.py',
    'damoyolo_nm_coco': 'damoyolo_tinynasL18_Nm.py',
    'damoyolo_nl_coco': 'damoyolo_tinynasL20_Nl.py',
    'damoyolo_t_coco': 'damoyolo_tinynasL20_T.py',
    'damoyolo_s_coco': 'damoyolo_tinynasL25_S.py',
    'damoyolo_m_coco': 'damoyolo_tinynasL35_M.py',
    'damoyolo_l_coco': 'damoyolo_tinynasL45_L.py',
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Time the parts of a DAMO-YOLO training step')
    parser.add_argument('config', help='config file')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument(
        '--img-size', type=int, default=None,
        help='square input size (default: the config\'s train size)')
    parser.add_argument('--iters', type=int, default=10,
                        help='timed iterations')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed iterations first')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch intra-op threads (default: torch\'s)')
    parser.add_argument(
        '--data', choices=['synthetic', 'config'], default='synthetic',
        help='synthetic: random image + boxes (same for both '
        'implementations); config: batches from the config\'s train '
        'dataloader (needs its data on disk)')
    parser.add_argument('--num-gts', type=int, default=8,
                        help='boxes per synthetic image')
    parser.add_argument(
        '--memory-format', choices=['contiguous', 'channels_last'],
        default=None, help='memory format of our model (default: that of '
        'the config\'s MemoryFormatHook, else contiguous)')
    parser.add_argument('--no-ema', action='store_true',
                        help='do not time the EMA update')
    parser.add_argument(
        '--official-root', default=None,
        help='path of the reference DAMO-YOLO repository to compare with')
    parser.add_argument(
        '--official-config', default=None,
        help='reference config (file name in <root>/configs or a path); '
        'default: matched to the config name')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', default=None,
                        help='also write the figures to this json file')
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------
# machine
# ---------------------------------------------------------------------------
def machine_info() -> Dict[str, object]:
    info = dict(
        platform=platform.platform(),
        processor=platform.processor() or platform.machine(),
        python=platform.python_version(),
        torch=torch.__version__,
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        omp_num_threads=os.environ.get('OMP_NUM_THREADS'),
    )
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    info['cpu_model'] = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    if hasattr(os, 'getloadavg'):
        info['loadavg_1m_before'] = round(os.getloadavg()[0], 2)
    return info


# ---------------------------------------------------------------------------
# timers
# ---------------------------------------------------------------------------
class Clock:
    """Accumulates wall time per part for the current iteration."""

    def __init__(self):
        self.current: Dict[str, float] = defaultdict(float)
        self.history: Dict[str, List[float]] = defaultdict(list)

    @contextlib.contextmanager
    def part(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.current[name] += time.perf_counter() - start

    def wrap(self, fn: Callable, name: str) -> Callable:
        """``fn`` whose calls are added to part ``name``."""

        def timed(*args, **kwargs):
            with self.part(name):
                return fn(*args, **kwargs)

        return timed

    def end_iter(self, record: bool):
        if record:
            for name in PARTS:
                self.history[name].append(self.current.get(name, 0.) * 1e3)
        self.current = defaultdict(float)

    def summary(self) -> Dict[str, float]:
        out = {
            name: statistics.median(values)
            for name, values in self.history.items() if values
        }
        totals = [
            sum(self.history[p][i] for p in PARTS)
            for i in range(len(self.history['forward']))
        ]
        out['total'] = statistics.median(totals) if totals else float('nan')
        return out


# ---------------------------------------------------------------------------
# synthetic batch
# ---------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------
# our implementation
# ---------------------------------------------------------------------------
class OurStep:
    """One training step of our model with timers around its parts."""

    def __init__(self, cfg, args, clock: Clock):
        from mmdet.registry import MODELS
        from mmengine.optim import build_optim_wrapper

        self.clock = clock
        self.model = MODELS.build(cfg.model)
        self.model.init_weights()
        self.model.train()
        if args.memory_format == 'channels_last':
            self.model.to(memory_format=torch.channels_last)
        self.head = self.model.bbox_head
        self.optim_wrapper = build_optim_wrapper(self.model,
                                                 copy.deepcopy(
                                                     cfg.optim_wrapper))
        self.ema = None
        if not args.no_ema:
            from damoyolo_mm.engine import DAMOYOLOEMA
            self.ema = DAMOYOLOEMA(self.model, momentum=0.0002, gamma=2000)
        # time the assigner inside the loss
        self.head.assigner.batch_assign = clock.wrap(
            self.head.assigner.batch_assign, 'assign')
        self.loader = None
        if args.data == 'config':
            self.loader = iter_forever(build_train_loader(cfg, args))

    def batch_from(self, images, boxes, labels):
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
                data = next(self.loader)
                data = self.model.data_preprocessor(data, True)
                inputs, samples = data['inputs'], data['data_samples']
            else:
                inputs, samples = self.batch_from(images, boxes, labels)
        with clock.part('forward'):
            feats = self.model.extract_feat(inputs)
            outs = self.head(feats)
        start = time.perf_counter()
        before = clock.current['assign']
        losses = self.head.loss_by_feat(
            *outs, [s.gt_instances for s in samples],
            [s.metainfo for s in samples])
        loss, log_vars = self.model.parse_losses(losses)
        elapsed = time.perf_counter() - start
        clock.current['loss'] += elapsed - (clock.current['assign'] - before)
        with clock.part('backward'):
            loss.backward()
        with clock.part('optim'):
            self.optim_wrapper.step()
            self.optim_wrapper.zero_grad()
        if self.ema is not None:
            with clock.part('ema'):
                self.ema.update_parameters(self.model)
        return {k: float(v) for k, v in log_vars.items()}


def build_train_loader(cfg, args):
    from mmengine.runner import Runner
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    loader_cfg.update(
        batch_size=args.batch_size, num_workers=0, persistent_workers=False)
    loader_cfg.pop('prefetch_factor', None)
    return Runner.build_dataloader(loader_cfg, seed=args.seed)


def iter_forever(loader):
    while True:
        for batch in loader:
            yield batch


# ---------------------------------------------------------------------------
# the reference implementation
# ---------------------------------------------------------------------------
class _EasyDict(dict):
    """Minimal stand-in for ``easydict.EasyDict`` (attribute access)."""

    def __init__(self, d=None, **kwargs):
        super().__init__()
        for k, v in dict(d or {}, **kwargs).items():
            self[k] = v

    def __setitem__(self, key, value):
        if isinstance(value, dict) and not isinstance(value, _EasyDict):
            value = _EasyDict(value)
        super().__setitem__(key, value)

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError as err:
            raise AttributeError(key) from err

    def __setattr__(self, key, value):
        self[key] = value

    def __deepcopy__(self, memo):
        return _EasyDict(copy.deepcopy(dict(self), memo))


def _unavailable(name):

    def fn(*args, **kwargs):
        raise RuntimeError(f'{name} is a stand-in inside benchmark_train.py '
                           'and cannot be used')

    return fn


@contextlib.contextmanager
def reference_import_stubs():
    """Install stand-ins for the reference's import-time dependencies that
    are missing here (only those), remove them afterwards."""
    added = []

    def add(name, module):
        if name in sys.modules:
            return
        sys.modules[name] = module
        added.append(name)

    def missing(name):
        try:
            __import__(name)
            return False
        except ImportError:
            return True

    if missing('torchvision'):
        tv = types.ModuleType('torchvision')
        ops = types.ModuleType('torchvision.ops')
        ops.batched_nms = _unavailable('torchvision.ops.batched_nms')
        ops.nms = _unavailable('torchvision.ops.nms')
        transforms = types.ModuleType('torchvision.transforms')
        functional = types.ModuleType('torchvision.transforms.functional')
        for fn in ('normalize', 'to_pil_image', 'to_tensor', 'affine'):
            setattr(functional, fn, _unavailable(f'F.{fn}'))
        transforms.functional = functional
        datasets = types.ModuleType('torchvision.datasets')
        coco = types.ModuleType('torchvision.datasets.coco')
        coco.CocoDetection = type('CocoDetection', (object, ), {})
        datasets.coco = coco
        tv.ops, tv.transforms, tv.datasets = ops, transforms, datasets
        for name, mod in (('torchvision', tv), ('torchvision.ops', ops),
                          ('torchvision.transforms', transforms),
                          ('torchvision.transforms.functional', functional),
                          ('torchvision.datasets', datasets),
                          ('torchvision.datasets.coco', coco)):
            add(name, mod)
    if missing('loguru'):
        loguru = types.ModuleType('loguru')

        class _Logger:

            def __getattr__(self, name):
                return lambda *args, **kwargs: None

        loguru.logger = _Logger()
        add('loguru', loguru)
    if missing('easydict'):
        easydict = types.ModuleType('easydict')
        easydict.EasyDict = _EasyDict
        add('easydict', easydict)
    if missing('thop'):
        thop = types.ModuleType('thop')
        thop.profile = _unavailable('thop.profile')
        add('thop', thop)
    try:
        yield added
    finally:
        for name in added:
            sys.modules.pop(name, None)


class OfficialStep:
    """One step of the reference trainer with the same timers."""

    def __init__(self, root: str, config: str, num_classes: int,
                 clock: Clock, with_ema: bool):
        self.clock = clock
        root = osp.abspath(root)
        if not osp.isdir(osp.join(root, 'damo')):
            raise FileNotFoundError(
                f'--official-root {root!r} has no damo/ package')
        cfg_path = config if osp.isfile(config) else osp.join(
            root, 'configs', config)
        if not osp.isfile(cfg_path):
            raise FileNotFoundError(f'reference config {cfg_path!r} '
                                    'not found')
        cwd = os.getcwd()
        modules_before = set(sys.modules)
        path_before = list(sys.path)
        with reference_import_stubs() as stubs:
            self.stubs = stubs
            sys.path.insert(0, root)
            os.chdir(root)  # the configs read structure files relatively
            try:
                from damo.apis.detector_trainer import Trainer, ema_model
                from damo.config.base import parse_config
                from damo.detectors.detector import build_local_model
                from damo.structures.bounding_box import BoxList
                from damo.structures.image_list import to_image_list
                cfg = parse_config(cfg_path)
            finally:
                os.chdir(cwd)
                # leave no trace in the interpreter: the objects above keep
                # what they need alive
                sys.path[:] = path_before
                for name in set(sys.modules) - modules_before:
                    if name.split('.')[0] in ('damo', 'configs') or \
                            name.startswith('damoyolo_tinynas'):
                        sys.modules.pop(name, None)
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
        head.loss = self._timed_loss

    def _timed_loss(self, *args, **kwargs):
        clock = self.clock
        start = time.perf_counter()
        before = clock.current['assign']
        out = self._head_loss(*args, **kwargs)
        elapsed = time.perf_counter() - start
        clock.current['loss'] += elapsed - (clock.current['assign'] - before)
        self._loss_time = elapsed
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
            feats = self.model.backbone(image_list.tensors)
            fpn = self.model.neck(feats)
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
                self.ema.update(self.iter, types.SimpleNamespace(
                    module=self.model))
        self.iter += 1
        return {k: float(v) for k, v in outputs.items()}


# ---------------------------------------------------------------------------
def main(argv=None):
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    from mmengine.config import Config
    from mmengine.logging import MMLogger

    from damoyolo_mm.utils import register_all_modules
    # keep mmengine's per-parameter optimizer messages out of the output
    MMLogger.get_instance('benchmark_train', log_level='WARNING')
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(args.config)
    size = args.img_size
    if size is None:
        scale = cfg.get('img_scale', cfg.get('input_size', (640, 640)))
        size = int(scale[0])
    num_classes = int(cfg.model.bbox_head.num_classes)
    if args.memory_format is None:
        args.memory_format = config_memory_format(cfg)

    info = machine_info()
    print('machine:')
    for k, v in info.items():
        print(f'  {k}: {v}')
    print(f'config: {args.config}  batch {args.batch_size}  input '
          f'{size}x{size}  data {args.data}  memory format '
          f'{args.memory_format}  iters {args.iters} (+{args.warmup} '
          'warm-up)')

    ours_clock = Clock()
    ours = OurStep(cfg, args, ours_clock)
    official = None
    if args.official_root:
        name = osp.splitext(osp.basename(args.config))[0]
        ref_cfg = args.official_config or OFFICIAL_CONFIGS.get(name)
        if ref_cfg is None:
            raise ValueError(f'no reference config known for {name!r}; '
                             'pass --official-config')
        off_clock = Clock()
        official = OfficialStep(args.official_root, ref_cfg, num_classes,
                                off_clock, not args.no_ema)
        print(f'reference: {args.official_root} ({ref_cfg}); stand-ins '
              f'for missing modules: {official.stubs or "none"}')

    images, boxes, labels = synthetic_batch(args.batch_size, size,
                                            args.num_gts, num_classes,
                                            args.seed)
    last = {}
    for it in range(args.warmup + args.iters):
        record = it >= args.warmup
        last['ours'] = ours(images, boxes, labels)
        ours_clock.end_iter(record)
        if official is not None:
            last['official'] = official(images, boxes, labels)
            off_clock.end_iter(record)

    results = dict(machine=info, config=args.config,
                   batch_size=args.batch_size, img_size=size,
                   memory_format=args.memory_format, data=args.data,
                   iters=args.iters, ours=ours_clock.summary(),
                   last_losses=last)
    if hasattr(os, 'getloadavg'):
        results['machine']['loadavg_1m_after'] = round(os.getloadavg()[0],
                                                       2)
    header = f'{"part":<10}{"ours ms":>12}'
    if official is not None:
        results['official'] = off_clock.summary()
        header += f'{"official ms":>14}{"ours/official":>15}'
    print('\nmedian per iteration:')
    print(header)
    for part in PARTS + ('total', ):
        row = f'{part:<10}{results["ours"].get(part, 0.):>12.1f}'
        if official is not None:
            ref = results['official'].get(part, 0.)
            mine = results['ours'].get(part, 0.)
            ratio = mine / ref if ref > 0 else float('nan')
            row += f'{ref:>14.1f}{ratio:>15.2f}'
        print(row)
    if official is not None:
        o, r = results['ours'], results['official']
        step_parts = ('forward', 'assign', 'loss', 'backward', 'optim',
                      'ema')
        ours_step = sum(o.get(p, 0.) for p in step_parts)
        ref_step = sum(r.get(p, 0.) for p in step_parts)
        results['ratio_step'] = ours_step / ref_step
        results['ratio_assign'] = o['assign'] / r['assign'] if r.get(
            'assign') else math.nan
        print(f'\ntraining step without data: ours {ours_step:.1f} ms, '
              f'official {ref_step:.1f} ms, ratio '
              f'{results["ratio_step"]:.2f}')
        print(f'assigner: ratio {results["ratio_assign"]:.2f}')
    print(f'losses of the last iteration: {last}')
    print(f'load average (1 min) before / after: '
          f'{info.get("loadavg_1m_before")} / '
          f'{info.get("loadavg_1m_after")}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == '__main__':
    main()
