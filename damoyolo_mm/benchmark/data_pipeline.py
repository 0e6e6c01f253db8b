"""Images/s of DAMO-YOLO's full training data pipeline, ours vs official.

Ours: a config's ``train_dataloader`` (load, Mosaic, RandomAffine, MixUp,
resize, flip, SADA at full strength, pack). Official: ``COCODataset`` +
``MosaicWrapper`` + transforms (resize, flip, to tensor, normalise,
``SA_Aug`` at full strength) with the S / M / L settings; same images,
batch and workers. Each: images/s through a DataLoader, then CPU ms per
image of each part in this process (one thread, as in a worker).
"""
import os.path as osp
import random
import tempfile
import time
import types
from typing import Callable, Dict, Optional, Tuple

import cv2
import numpy as np
import torch

from .official_code import official_code
from .timing import CpuPartClock

#: classes of the generated demo data
CLASSES = ('disk', 'rectangle', 'triangle', 'ring', 'cross')

#: (images/s, (CPU ms/image per part, wall ms/image, CPU ms/image))
Result = Tuple[float, Tuple[Dict[str, float], float, float]]


def images_per_s(loader, num_batches: int) -> float:
    """Images/s of ``num_batches`` batches after one warm-up batch (worker
    start), cycling through epochs as needed."""
    it = (batch for _ in iter(int, 1) for batch in loader)  # epochs forever
    next(it)
    start, n = time.perf_counter(), 0
    for batch in (next(it) for _ in range(num_batches)):
        n += len(batch['inputs'] if isinstance(batch, dict) else batch[1])
    return n / (time.perf_counter() - start)


def profile_parts(get_item: Callable[[int], object], clock: CpuPartClock,
                  n: int) -> Tuple[Dict[str, float], float, float]:
    """CPU ms/image per part (``other``: untimed), wall and CPU ms/image
    of ``n`` calls of ``get_item``."""
    clock.total.clear()
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        get_item(i)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    parts = {k: v * 1e3 / n for k, v in clock.total.items()}
    parts['other (canvas, copies)'] = cpu * 1e3 / n - sum(parts.values())
    return parts, wall * 1e3 / n, cpu * 1e3 / n


def ours(config: str, root: str, workers: int, batch_size: int,
         num_batches: int, profile_images: int) -> Result:
    """The config's train_dataloader on the COCO-style set at ``root``."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from damoyolo_mm.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(config)
    dl = cfg.train_dataloader
    dl.dataset.dataset.update(
        data_root=root, ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'), metainfo=dict(classes=CLASSES))
    for t in dl.dataset.pipeline:  # SADA at full strength (end of training)
        if t['type'] == 'SADA':
            t.update(ramp=False)
    dl.update(batch_size=batch_size, num_workers=workers,
              persistent_workers=False, pin_memory=False)  # as official
    loader = Runner.build_dataloader(dl, seed=0)
    rate = images_per_s(loader, num_batches)
    dataset, clock = loader.dataset, CpuPartClock()
    for prefix, ts in (('', dataset.pipeline),  # a list in mmdet 3.3
                       ('load: ', dataset.dataset.pipeline.transforms)):
        for t in ts:  # BaseTransform.__call__ calls self.transform
            t.transform = clock.wrap(t.transform, prefix + type(t).__name__)
    return rate, profile_parts(dataset.__getitem__, clock, profile_images)


def official(official_root: str, root: str, workers: int, batch_size: int,
             num_batches: int, profile_images: int) -> Result:
    """The official loader (S / M / L settings of
    ``configs/damoyolo_tinynasL25_S.py``) on the set at ``root``."""
    root = osp.abspath(root)  # official_code changes the cwd
    with official_code(official_root):
        import damo.dataset.datasets.mosaic_wrapper as mw
        from damo.augmentations.scale_aware_aug import SA_Aug
        from damo.config.augmentations import SADA
        from damo.dataset.collate_batch import BatchCollator
        from damo.dataset.datasets.coco import COCODataset
        from damo.dataset.transforms import build_transforms
        data = COCODataset(osp.join(root, 'annotations/instances_train.json'),
                           osp.join(root, 'train'), class_names=CLASSES)
        tf = build_transforms(0, 300, 16, 1000, max(workers, 1), batch_size,
                              1, (640, 640), 0.5, [0.] * 3, [1.] * 3,
                              types.SimpleNamespace(**SADA), False)
        sa = next(t for t in tf.transforms if isinstance(t, SA_Aug))
        sa.box_augs.max_iters = 10**9  # full strength: iteration ~ max_iters
        sa.count = int(0.999 * 10**9 * sa.batch_size / sa.num_workers)
        dataset = mw.MosaicWrapper(
            data, (640, 640), mosaic_prob=1.0, mixup_prob=0.15,
            transforms=tf, degrees=10.0, translate=0.2, shear=2.0,
            mosaic_scale=(0.1, 2.0), mixup_scale=(0.5, 1.5),
            keep_ratio=False)
        order = np.random.default_rng(0).permutation(len(dataset))
        bs = batch_size
        batches = [[(True, int(j)) for j in order[i:i + bs]]
                   for i in range(0, len(order) - bs + 1, bs)]
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=batches * 4, num_workers=workers,
            collate_fn=BatchCollator(32))
        rate = images_per_s(loader, num_batches)
        clock = CpuPartClock()
        data.pull_item = clock.wrap(data.pull_item, 'load: pull_item')
        mw.random_affine = clock.wrap(mw.random_affine, 'random_affine')
        dataset.mixup = clock.wrap(dataset.mixup, 'mixup')
        tf.transforms = [clock.wrap(t, type(t).__name__)
                         for t in tf.transforms]
        parts = profile_parts(lambda i: dataset[(True, i % len(dataset))],
                              clock, profile_images)
    return rate, parts


def benchmark_data_pipeline(config: str,
                            official_root: Optional[str] = None,
                            data_root: Optional[str] = None,
                            num_images: int = 64, workers: int = 2,
                            batch_size: int = 8, num_batches: int = 12,
                            profile_images: int = 32,
                            on_data: Optional[Callable[[str], None]] = None
                            ) -> Dict[str, Result]:
    """Seeded, one thread per process (as in loader workers); ``ours`` and,
    given ``official_root``, ``official``. Without ``data_root`` a demo set
    of ``num_images`` images is generated in a temporary folder.
    ``on_data(root)`` is called once the data is ready."""
    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    torch.set_num_threads(1), cv2.setNumThreads(0)
    kw = dict(workers=workers, batch_size=batch_size,
              num_batches=num_batches, profile_images=profile_images)
    with tempfile.TemporaryDirectory() as tmp:
        root = osp.abspath(data_root or tmp)
        if data_root is None:
            from damoyolo_mm.datasets import generate_demo_dataset
            generate_demo_dataset(root, seed=0, num_train=num_images,
                                  num_val=1)
        if on_data is not None:
            on_data(root)
        results = dict(ours=ours(config, root, **kw))
        if official_root:
            results['official'] = official(official_root, root, **kw)
    return results
