"""The full training data pipeline of the recipe (load, DAMOYOLOMosaic,
DAMOYOLORandomAffine, DAMOYOLOMixUp, Resize, RandomFlip, SADA, PackDetInputs
through the config's dataset wrapper) gives exactly the recorded output:
the same uint8 images, boxes and labels from the same seeds, i.e. the same
random draws in the same order. Speed work on these transforms must keep
this test passing.

The hashes in ``tests/data/train_pipeline_hashes.json`` were recorded with
numpy / opencv of ``tools/setup_env.sh``; a different opencv or numpy build
may round differently (the file names the versions). To re-record after an
intended change of the output::

    python tests/test_datasets/test_train_pipeline_pinned.py --record
"""
import argparse
import collections
import hashlib
import json
import os.path as osp
import random
import sys
import tempfile

import cv2
import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HASHES = osp.join(REPO, 'tests', 'data', 'train_pipeline_hashes.json')
SIZE = 128  # mosaic cell, affine / mixup output and network input (w = h)
NUM_SAMPLES = 160  # full pipeline
NUM_TAIL_SAMPLES = 16  # then the tail only (PipelineSwitchHook's switch)


def _build_dataset(root):
    from mmengine.config import Config
    from mmdet.registry import DATASETS

    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'datasets',
                 'coco_detection.py'))
    ds = cfg.train_dataloader.dataset
    ds.dataset.update(
        data_root=root, ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        metainfo=dict(classes=('disk', 'rectangle', 'triangle', 'ring',
                               'cross')))
    for t in ds.pipeline:
        if 'img_scale' in t:
            t['img_scale'] = (SIZE, SIZE)
        if t['type'] == 'Resize':
            t['scale'] = (SIZE, SIZE)
        if t['type'] == 'DAMOYOLOMixUp':
            t['prob'] = 1.0  # every image mixed (when it has boxes)
        if t['type'] == 'SADA':
            t['ramp'] = False  # full strength
    return DATASETS.build(ds)


def _digest(item):
    inputs = item['inputs'].numpy()
    inst = item['data_samples'].gt_instances
    h = hashlib.sha256()
    h.update(str((inputs.dtype, inputs.shape)).encode())
    h.update(np.ascontiguousarray(inputs).tobytes())
    h.update(inst.bboxes.tensor.numpy().astype(np.float32).tobytes())
    h.update(inst.labels.numpy().astype(np.int64).tobytes())
    return h.hexdigest()


class _Spy:
    """Records which branches of MixUp and SADA each sample went through,
    from their inputs and outputs and the SADA operations called."""

    def __init__(self, monkeypatch):
        from damoyolo_mm.datasets.transforms import SADA, DAMOYOLOMixUp
        self.mixup, self.sada, self._ops = [], [], []
        mix_tf, sada_tf = DAMOYOLOMixUp.transform, SADA.transform
        color_op, geo_op = SADA._color_boxes, SADA._geometric_plan

        def mixup(tf, results):
            self.mixup.append(
                len(results.get('mix_results', [])) == 1
                and len(results['gt_bboxes']) > 0)
            return mix_tf(tf, results)

        def sada(tf, results):
            self._ops = []
            img, n = results['img'].copy(), len(results['gt_bboxes'])
            out = sada_tf(tf, results)
            self.sada.append(
                (tuple(self._ops), not np.array_equal(out['img'], img),
                 len(out['gt_bboxes']) > n))
            return out

        def color(tf, boxes, op, splits):
            self._ops.append(op[0])
            return color_op(tf, boxes, op, splits)

        def geo(tf, shape, boxes, op, splits):
            self._ops.append(op[0])
            return geo_op(tf, shape, boxes, op, splits)

        monkeypatch.setattr(DAMOYOLOMixUp, 'transform', mixup)
        monkeypatch.setattr(SADA, 'transform', sada)
        monkeypatch.setattr(SADA, '_color_boxes', color)
        monkeypatch.setattr(SADA, '_geometric_plan', geo)


def run_pipeline():
    """Digests of the full pipeline's samples, then of the tail's."""
    from damoyolo_mm.datasets import generate_demo_dataset
    threads = cv2.getNumThreads()
    cv2.setNumThreads(0)
    try:
        with tempfile.TemporaryDirectory() as root:
            generate_demo_dataset(root, seed=0, num_train=8, num_val=1,
                                  img_size=(96, 112))
            dataset = _build_dataset(root)
            random.seed(0), np.random.seed(0), torch.manual_seed(0)
            n = len(dataset)
            full = [_digest(dataset[i % n]) for i in range(NUM_SAMPLES)]
            dataset.update_skip_type_keys(
                ['DAMOYOLOMosaic', 'DAMOYOLORandomAffine', 'DAMOYOLOMixUp'])
            tail = [_digest(dataset[i % n]) for i in range(NUM_TAIL_SAMPLES)]
    finally:
        cv2.setNumThreads(threads)
    return full, tail


# every colour and geometric operation, high probabilities (SADA's
# autoaug_params layout: 4 unused, 5 x (colour, p x10, level, geometric,
# p x10, level), Gaussian size indexes and geometric scale weights)
ALL_OPS_POLICY = (0, 0, 0, 0,
                  0, 8, 5, 3, 5, 6,
                  1, 8, 3, 1, 5, 4,
                  4, 8, 7, 4, 5, 9,
                  6, 8, 9, 5, 5, 3,
                  5, 8, 9, 0, 5, 0,
                  2, 5, 9, 1, 1, 1)
SADA_SIZE = (240, 320)  # (h, w) of the images of run_sada


def run_sada():
    """Digests of SADA alone (default and all-operations policies) on
    larger images with many boxes of all scales."""
    from mmdet.structures.bbox import HorizontalBoxes

    from damoyolo_mm.datasets.transforms import SADA
    rng = np.random.default_rng(0)
    np.random.seed(0)
    digests = []
    for t in (SADA(ramp=False, box_prob=0.5),
              SADA(ramp=False, box_prob=0.6, autoaug_params=ALL_OPS_POLICY)):
        for _ in range(100):
            h, w = SADA_SIZE
            n = int(rng.integers(1, 9))
            side = rng.uniform(4, [w * .6, h * .6], size=(n, 2))
            xy = rng.uniform(-8, [w, h], size=(n, 2)) - side / 2
            boxes = np.concatenate([xy, xy + side], 1).astype(np.float32)
            # smooth content plus noise: colour operations change it
            small = rng.integers(0, 256, (6, 8, 3)).astype(np.uint8)
            img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
            img = np.clip(img + rng.integers(-20, 21, img.shape), 0,
                          255).astype(np.uint8)
            out = t(dict(img=img, img_shape=(h, w),
                         gt_bboxes=HorizontalBoxes(boxes),
                         gt_bboxes_labels=np.arange(n),
                         gt_ignore_flags=np.zeros(n, bool)))
            d = hashlib.sha256(out['img'].tobytes())
            d.update(out['gt_bboxes'].numpy().tobytes())
            d.update(out['gt_bboxes_labels'].astype(np.int64).tobytes())
            digests.append(d.hexdigest())
    return digests


def test_sada_output_is_pinned(monkeypatch):
    spy = _Spy(monkeypatch)
    digests = run_sada()
    with open(HASHES) as f:
        ref = json.load(f)
    bad = [i for i, (a, b) in enumerate(zip(digests, ref['sada'])) if a != b]
    assert not bad and len(digests) == len(ref['sada']), \
        f"SADA: samples {bad} differ (recorded with {ref['versions']}, " \
        f'running {_versions()})'
    ops = collections.Counter(op for o, _, _ in spy.sada for op in o)
    for op in ('AutoContrast', 'Equalize', 'Contrast', 'Sharpness',
               'Brightness', 'SolarizeAdd', 'Color', 'shearY', 'shearX',
               'rotate', 'translateX', 'translateY', 'hflip'):
        assert ops[op] >= 3, ops
    assert sum(ch for _, ch, _ in spy.sada) >= 80
    assert sum(added for _, _, added in spy.sada) >= 5


def test_train_pipeline_output_is_pinned(monkeypatch):
    spy = _Spy(monkeypatch)
    full, tail = run_pipeline()
    with open(HASHES) as f:
        ref = json.load(f)
    versions = f"recorded with {ref['versions']}, running {_versions()}"
    bad = [i for i, (a, b) in enumerate(zip(full, ref['full'])) if a != b]
    assert not bad and len(full) == len(ref['full']), \
        f'full pipeline: samples {bad} differ ({versions})'
    assert tail == ref['tail'], f'tail pipeline differs ({versions})'

    # every branch was exercised: the mixup, each operation of the policy,
    # colour operations that change the image and that do not (no box
    # chosen), translations that add boxes
    assert len(spy.mixup) == NUM_SAMPLES and sum(spy.mixup) >= 100
    assert len(spy.sada) == NUM_SAMPLES + NUM_TAIL_SAMPLES
    ops = collections.Counter(op for o, _, _ in spy.sada for op in o)
    for op in ('Color', 'Brightness', 'Sharpness', 'SolarizeAdd',
               'translateX', 'translateY', 'rotate', 'shearX', 'hflip'):
        assert ops[op] >= 2, ops
    color = {'Color', 'Brightness', 'Sharpness', 'SolarizeAdd'}
    color_only = [ch for o, ch, _ in spy.sada if len(o) == 1 and o[0] in color]
    geo_only = [ch for o, ch, _ in spy.sada if len(o) == 1
                and o[0] not in color]
    both = [ch for o, ch, _ in spy.sada if len(o) == 2]
    for runs in (color_only, geo_only, both):
        assert sum(runs) >= 2 and len(runs) - sum(runs) >= 1, spy.sada
    assert sum(added for _, _, added in spy.sada) >= 2
    assert sum(not o for o, _, _ in spy.sada) >= 2  # no operation drawn


def _versions():
    return f'numpy {np.__version__}, opencv {cv2.__version__}'


if __name__ == '__main__':
    p = argparse.ArgumentParser(description='record ' + HASHES)
    p.add_argument('--record', action='store_true', required=True)
    p.parse_args()
    sys.path.insert(0, REPO)
    from damoyolo_mm.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    full, tail = run_pipeline()
    sada = run_sada()
    tmp = HASHES + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(dict(versions=_versions(), full=full, tail=tail,
                       sada=sada), f, indent=1)
        f.write('\n')
    import os
    os.replace(tmp, HASHES)
    print(f'wrote {HASHES}')
