"""Images/s of DAMO-YOLO's full training data pipeline, ours vs the official.

Ours: the config's train_dataloader (load, Mosaic, RandomAffine, MixUp,
resize, flip, SADA at full strength, pack). Official (--official-root):
COCODataset + MosaicWrapper + transforms (resize, flip, to tensor, normalise,
SA_Aug at full strength); same settings, images, batch and workers. Each:
images/s through a DataLoader, then CPU ms per image of each part in this
process (one thread, as in a worker).

    python tools/benchmark_data.py --official-root ../DAMO-YOLO --workers 2
"""
import argparse
import contextlib
import importlib.util
import os
import os.path as osp
import platform
import random
import sys
import tempfile
import time
import types
from collections import defaultdict

import cv2
import numpy as np
import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # clone

CLASSES = ('disk', 'rectangle', 'triangle', 'ring', 'cross')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', nargs='?', default='configs/damoyolo_s_coco.py',
                   help='config whose train_dataloader is measured')
    p.add_argument('--official-root', help='tinyvision/DAMO-YOLO checkout')
    p.add_argument('--data-root', help='COCO-style set (annotations/instances'
                   '_train.json, train/); default: generated demo data')
    for name, default in (('num-images', 64), ('workers', 2),
                          ('batch-size', 8), ('num-batches', 12),
                          ('profile-images', 32)):
        p.add_argument('--' + name, type=int, default=default)
    return p.parse_args(argv)


class Timings:
    """Exclusive CPU seconds per part (robust to other load; nested calls
    count for themselves); ``wrap`` times a callable."""

    def __init__(self):
        self.total, self.stack = defaultdict(float), []

    def wrap(self, fn, name):
        def timed(*args, **kwargs):
            self.stack.append(0.)
            start = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.process_time() - start
                self.total[name] += spent - self.stack.pop()
                if self.stack:
                    self.stack[-1] += spent
        return timed


def images_per_s(loader, num_batches):
    it = (batch for _ in iter(int, 1) for batch in loader)  # epochs forever
    next(it)  # warm-up: worker start
    start, n = time.perf_counter(), 0
    for batch in (next(it) for _ in range(num_batches)):
        n += len(batch['inputs'] if isinstance(batch, dict) else batch[1])
    return n / (time.perf_counter() - start)


def profile(get_item, timings, n):
    """CPU ms/image per part (``other``: untimed), wall and CPU ms/image."""
    timings.total.clear()
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        get_item(i)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    parts = {k: v * 1e3 / n for k, v in timings.total.items()}
    parts['other (canvas, copies)'] = cpu * 1e3 / n - sum(parts.values())
    return parts, wall * 1e3 / n, cpu * 1e3 / n


def ours(args, root):
    from mmengine.config import Config
    from mmengine.runner import Runner

    from damoyolo_mm.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(args.config)
    dl = cfg.train_dataloader
    dl.dataset.dataset.update(
        data_root=root, ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'), metainfo=dict(classes=CLASSES))
    for t in dl.dataset.pipeline:  # SADA at full strength (end of training)
        t.update(ramp=False) if t['type'] == 'SADA' else None
    dl.update(batch_size=args.batch_size, num_workers=args.workers,
              persistent_workers=False, pin_memory=False)  # as official
    loader = Runner.build_dataloader(dl, seed=0)
    rate = images_per_s(loader, args.num_batches)
    dataset, timings = loader.dataset, Timings()
    for prefix, ts in (('', dataset.pipeline),  # a list in mmdet 3.3
                       ('load: ', dataset.dataset.pipeline.transforms)):
        for t in ts:  # BaseTransform.__call__ calls self.transform
            t.transform = timings.wrap(t.transform, prefix + type(t).__name__)
    return rate, profile(dataset.__getitem__, timings, args.profile_images)


def official(args, root):
    """The reference loader, imported with stand-ins for the modules it
    needs that are not installed (torchvision, loguru, easydict, thop)."""
    from PIL import Image
    from pycocotools.coco import COCO

    def affine(img, angle, translate, scale, shear, **kwargs):
        """torchvision's F.affine of a PIL image (its inverse matrix)."""
        if 'resample' in kwargs:  # the reference retries with new names
            raise TypeError('resample')
        shear = list(shear) + [0.] if np.ndim(shear) else [shear, 0.]
        r, sx, sy = (float(np.radians(v)) for v in (angle, *shear[:2]))
        a, c = np.cos(r - sy) / np.cos(sy), np.sin(r - sy) / np.cos(sy)
        b, d = -a * np.tan(sx) - np.sin(r), -c * np.tan(sx) + np.cos(r)
        m = [float(x) / scale for x in (d, -b, 0., -c, a, 0.)]
        (cx, cy), (tx, ty) = (img.size[0] * .5, img.size[1] * .5), translate
        m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty) + cx
        m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty) + cy
        return img.transform(img.size, Image.AFFINE, m, Image.BILINEAR,
                             fillcolor=kwargs.get('fill'))

    class CocoDetection:  # torchvision.datasets.CocoDetection
        def __init__(self, root, ann_file):
            self.root, self.coco = root, COCO(ann_file)
            self.ids = list(sorted(self.coco.imgs.keys()))

        def __getitem__(self, i):
            path = self.coco.loadImgs(self.ids[i])[0]['file_name']
            return (Image.open(osp.join(self.root, path)).convert('RGB'),
                    self.coco.loadAnns(self.coco.getAnnIds(self.ids[i])))

        __len__ = lambda self: len(self.ids)  # noqa: E731

    func = types.SimpleNamespace(
        to_pil_image=lambda t: Image.fromarray(
            t.mul(255).byte().permute(1, 2, 0).numpy()),
        to_tensor=lambda p: torch.from_numpy(np.array(p)).permute(
            2, 0, 1).float().div(255),
        normalize=lambda t, mean, std: (t - torch.tensor(mean)[:, None, None])
        / torch.tensor(std)[:, None, None],
        affine=affine)
    fake = {'torchvision': {},
            'torchvision.ops': dict(nms=None, batched_nms=None),
            'torchvision.transforms': {},
            'torchvision.transforms.functional': vars(func),
            'torchvision.datasets': {},
            'torchvision.datasets.coco': dict(CocoDetection=CocoDetection),
            'loguru': dict(logger=types.SimpleNamespace(**{
                k: lambda *a, **kw: None for k in ('info', 'warning')})),
            'easydict': dict(EasyDict=dict), 'thop': dict(profile=None)}
    installed = {n for n in {k.split('.')[0] for k in fake}
                 if importlib.util.find_spec(n) is not None}
    for name, attrs in fake.items():
        if name.split('.')[0] in installed:
            continue  # use the real one
        sys.modules[name] = types.ModuleType(name)
        vars(sys.modules[name]).update(attrs)
        parent, _, child = name.rpartition('.')
        if parent:  # `import torchvision.transforms as T` reads attributes
            setattr(sys.modules[parent], child, sys.modules[name])
    sys.path.insert(0, osp.abspath(args.official_root))
    try:
        import damo.dataset.datasets.mosaic_wrapper as mw
        from damo.dataset.datasets.coco import COCODataset
        from damo.augmentations.scale_aware_aug import SA_Aug
        from damo.config.augmentations import SADA
        from damo.dataset.collate_batch import BatchCollator
        from damo.dataset.transforms import build_transforms
    finally:
        sys.path.pop(0)
    # S / M / L settings (configs/damoyolo_tinynasL25_S.py)
    data = COCODataset(osp.join(root, 'annotations/instances_train.json'),
                       osp.join(root, 'train'), class_names=CLASSES)
    tf = build_transforms(0, 300, 16, 1000, max(args.workers, 1),
                          args.batch_size, 1, (640, 640), 0.5, [0.] * 3,
                          [1.] * 3, types.SimpleNamespace(**SADA), False)
    sa = next(t for t in tf.transforms if isinstance(t, SA_Aug))
    sa.box_augs.max_iters = 10 ** 9  # full strength: iteration ~ max_iters
    sa.count = int(0.999 * 10 ** 9 * sa.batch_size / sa.num_workers)
    dataset = mw.MosaicWrapper(
        data, (640, 640), mosaic_prob=1.0, mixup_prob=0.15, transforms=tf,
        degrees=10.0, translate=0.2, shear=2.0, mosaic_scale=(0.1, 2.0),
        mixup_scale=(0.5, 1.5), keep_ratio=False)
    order, bs = np.random.default_rng(0).permutation(len(dataset)), \
        args.batch_size
    batches = [[(True, int(j)) for j in order[i:i + bs]]
               for i in range(0, len(order) - bs + 1, bs)]
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=batches * 4, num_workers=args.workers,
        collate_fn=BatchCollator(32))
    rate = images_per_s(loader, args.num_batches)
    timings = Timings()
    data.pull_item = timings.wrap(data.pull_item, 'load: pull_item')
    mw.random_affine = timings.wrap(mw.random_affine, 'random_affine')
    dataset.mixup = timings.wrap(dataset.mixup, 'mixup')
    tf.transforms = [timings.wrap(t, type(t).__name__) for t in tf.transforms]
    return rate, profile(lambda i: dataset[(True, i % len(dataset))],
                         timings, args.profile_images)


def main(argv=None):
    args = parse_args(argv)
    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    torch.set_num_threads(1), cv2.setNumThreads(0)  # as in loader workers
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_root or tmp
        if args.data_root is None:
            from damoyolo_mm.datasets import generate_demo_dataset
            generate_demo_dataset(root, seed=0, num_train=args.num_images,
                                  num_val=1)
        cpu = platform.processor() or platform.machine()
        with contextlib.suppress(OSError), open('/proc/cpuinfo') as f:
            cpu = next((ln.split(':', 1)[1].strip() for ln in f
                        if ln.startswith('model name')), cpu)
        print(f'machine: {cpu}, {os.cpu_count()} CPUs, torch '
              f'{torch.__version__}, load {os.getloadavg()[0]:.2f}; '
              f'{args.workers} workers, batch {args.batch_size}, '
              f'{args.num_batches} batches, data {root}')
        results = dict(ours=ours(args, root))
        if args.official_root:
            results['official'] = official(args, root)
    for name, (rate, (parts, per_img, cpu)) in results.items():
        print(f'\n{name}: {rate:.1f} images/s ({args.workers} workers); '
              f'in-process {per_img:.1f} ms/image wall, {cpu:.1f} ms/image '
              'CPU; slowest parts (CPU ms/image):')
        for part, ms in sorted(parts.items(), key=lambda kv: -kv[1]):
            print(f'  {part:<36}{ms:8.2f}')
    if 'official' in results:
        (o_rate, o_prof), (r_rate, r_prof) = results.values()
        print(f'\nours / official: images/s {o_rate / r_rate:.2f}x, CPU '
              f'time per image {r_prof[2] / o_prof[2]:.2f}x less')


if __name__ == '__main__':
    sys.exit(main())
