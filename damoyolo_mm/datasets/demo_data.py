"""Deterministic generator of the embedded demo detection dataset.

The demo dataset is a small but real detection problem in COCO format: five
shape categories drawn with random colours (so colour says nothing about the
class), random size, aspect ratio and rotation, partially overlapping, on
textured backgrounds (smooth noise, stripes and grain), with some images that
contain no object at all. Nothing is downloaded: the same seed always yields
byte-identical annotation files.

Layout written under ``out_dir``::

    annotations/instances_train.json
    annotations/instances_val.json
    train/000000.jpg ...
    val/000000.jpg ...
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from damoyolo_mm.utils.fileio import atomic_open

DEMO_CLASSES: Tuple[str, ...] = ('disk', 'rectangle', 'triangle', 'ring',
                                 'cross')

#: Default location used by the demo configs (relative to the working dir).
DEMO_DATA_ROOT = 'data/demo/'


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A textured background: smooth colour noise + stripes + grain."""
    # smooth colour noise: upsampled random grid
    gh, gw = rng.integers(3, 9, size=2)
    grid = rng.uniform(40, 215, size=(gh, gw, 3)).astype(np.float32)
    img = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    # oriented stripes of random period and contrast
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = rng.uniform(0, np.pi)
    period = rng.uniform(6, 40)
    phase = (xx * np.cos(theta) + yy * np.sin(theta)) * (2 * np.pi / period)
    img += (rng.uniform(5, 30) * np.sin(phase))[..., None]
    # a few random thin strokes that are not objects (distractors)
    for _ in range(int(rng.integers(0, 4))):
        c = tuple(int(v) for v in rng.integers(0, 256, size=3))
        pts = np.stack([rng.integers(0, w, size=3), rng.integers(0, h, size=3)],
                       axis=1).astype(np.int32)
        cv2.polylines(img, [pts], False, c, int(rng.integers(1, 4)),
                      lineType=cv2.LINE_AA)
    img = cv2.GaussianBlur(img, (0, 0), sigmaX=float(rng.uniform(0.5, 2.0)))
    img += rng.normal(0, rng.uniform(3, 12), size=img.shape)
    return img


def _rotated(points: np.ndarray, angle: float, cx: float,
             cy: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return points @ rot.T + np.array([cx, cy])


def _shape_mask(rng: np.random.Generator, label: int, h: int, w: int,
                cx: float, cy: float, size: float,
                aspect: float) -> np.ndarray:
    """Rasterise one object of class ``label`` into a boolean mask."""
    mask = np.zeros((h, w), np.uint8)
    sx, sy = size * np.sqrt(aspect) / 2, size / np.sqrt(aspect) / 2
    angle = float(rng.uniform(0, np.pi))
    name = DEMO_CLASSES[label]
    if name == 'disk':
        cv2.ellipse(mask, (int(cx), int(cy)), (max(int(sx), 2), max(int(sy), 2)),
                    np.degrees(angle), 0, 360, 1, -1)
    elif name == 'ring':
        ax = (max(int(sx), 3), max(int(sy), 3))
        thick = max(2, int(min(ax) * rng.uniform(0.25, 0.45)))
        cv2.ellipse(mask, (int(cx), int(cy)), ax, np.degrees(angle), 0, 360, 1,
                    thick)
    elif name == 'rectangle':
        pts = np.array([[-sx, -sy], [sx, -sy], [sx, sy], [-sx, sy]])
        cv2.fillPoly(mask, [np.round(_rotated(pts, angle, cx, cy)).astype(
            np.int32)], 1)
    elif name == 'triangle':
        pts = np.array([[0, -sy], [sx, sy], [-sx, sy]])
        cv2.fillPoly(mask, [np.round(_rotated(pts, angle, cx, cy)).astype(
            np.int32)], 1)
    elif name == 'cross':
        t = rng.uniform(0.25, 0.4)
        bars = [np.array([[-sx, -sy * t], [sx, -sy * t], [sx, sy * t],
                          [-sx, sy * t]]),
                np.array([[-sx * t, -sy], [sx * t, -sy], [sx * t, sy],
                          [-sx * t, sy]])]
        for bar in bars:
            cv2.fillPoly(mask, [np.round(_rotated(bar, angle, cx, cy)).astype(
                np.int32)], 1)
    return mask.astype(bool)


def _make_image(rng: np.random.Generator, h: int, w: int, max_objects: int,
                empty_prob: float) -> Tuple[np.ndarray, List[Dict]]:
    img = _texture(rng, h, w)
    n = 0 if rng.random() < empty_prob else int(rng.integers(1, max_objects + 1))
    occupied = np.zeros((h, w), bool)
    objects = []
    for _ in range(n):
        for _attempt in range(20):
            label = int(rng.integers(0, len(DEMO_CLASSES)))
            size = float(rng.uniform(0.08, 0.45) * min(h, w))
            aspect = float(np.exp(rng.uniform(-0.6, 0.6)))
            cx = float(rng.uniform(0.05, 0.95) * w)
            cy = float(rng.uniform(0.05, 0.95) * h)
            mask = _shape_mask(rng, label, h, w, cx, cy, size, aspect)
            area = int(mask.sum())
            if area < 40:
                continue
            # allow overlap, but keep at least half of every earlier object
            # and of this one visible
            if (mask & occupied).sum() > 0.5 * area:
                continue
            if any((o['mask'] & mask).sum() > 0.5 * o['area'] for o in objects):
                continue
            break
        else:
            continue
        colour = rng.integers(0, 256, size=3).astype(np.float32)
        shade = rng.uniform(0.75, 1.15)
        img[mask] = img[mask] * 0.15 + colour * shade * 0.85
        occupied |= mask
        objects.append(dict(label=label, mask=mask, area=area))
    img = np.clip(img, 0, 255).astype(np.uint8)
    anns = []
    for o in objects:
        ys, xs = np.nonzero(o['mask'])
        x1, y1 = int(xs.min()), int(ys.min())
        x2, y2 = int(xs.max()) + 1, int(ys.max()) + 1
        anns.append(dict(category_id=o['label'] + 1,
                         bbox=[x1, y1, x2 - x1, y2 - y1], area=o['area']))
    return img, anns


def _check_args(out_dir, num_train, num_val, img_size, max_objects,
                empty_prob):
    if not isinstance(out_dir, (str, os.PathLike)) or not str(out_dir):
        raise ValueError(f'out_dir must be a non-empty path, got {out_dir!r}')
    for name, value in (('num_train', num_train), ('num_val', num_val),
                        ('max_objects', max_objects)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f'{name} must be a positive integer, got '
                             f'{value!r}')
    if (not isinstance(img_size, Sequence) or len(img_size) != 2
            or any(not isinstance(v, (int, np.integer)) or v < 64
                   for v in img_size)):
        raise ValueError('img_size must be (height, width) with both >= 64 '
                         f'pixels, got {img_size!r}')
    if not 0.0 <= float(empty_prob) < 1.0:
        raise ValueError(f'empty_prob must be in [0, 1), got {empty_prob!r}')


def generate_demo_dataset(out_dir: str = DEMO_DATA_ROOT,
                          seed: int = 0,
                          num_train: int = 160,
                          num_val: int = 40,
                          img_size: Tuple[int, int] = (320, 320),
                          max_objects: int = 6,
                          empty_prob: float = 0.08,
                          jitter_size: bool = True) -> Dict[str, str]:
    """Write the demo dataset and return the paths of its annotation files.

    Args:
        out_dir (str): Dataset root to write into (created if needed).
        seed (int): Random seed; the same seed gives identical files.
        num_train (int): Number of training images.
        num_val (int): Number of validation images.
        img_size (tuple[int, int]): Nominal (height, width) of the images.
        max_objects (int): Maximum number of objects per image.
        empty_prob (float): Probability that an image has no object.
        jitter_size (bool): Vary each image's height/width by up to +-20 %
            (multiples of 8) so that the pipeline sees varied shapes.

    Returns:
        dict: ``{'train': path, 'val': path}`` of the COCO json files.
    """
    _check_args(out_dir, num_train, num_val, img_size, max_objects,
                empty_prob)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    categories = [dict(id=i + 1, name=n, supercategory='shape')
                  for i, n in enumerate(DEMO_CLASSES)]
    paths = {}
    for split, num, split_seed in (('train', num_train, seed),
                                   ('val', num_val, seed + 1_000_003)):
        rng = np.random.default_rng(split_seed)
        img_dir = osp.join(out_dir, split)
        os.makedirs(img_dir, exist_ok=True)
        images, annotations = [], []
        for idx in range(num):
            h, w = img_size
            if jitter_size:
                h = int(round(h * rng.uniform(0.8, 1.2) / 8) * 8)
                w = int(round(w * rng.uniform(0.8, 1.2) / 8) * 8)
            img, anns = _make_image(rng, h, w, max_objects, empty_prob)
            file_name = f'{idx:06d}.jpg'
            # images are stored as BGR jpeg, like any photo on disk
            if not cv2.imwrite(osp.join(img_dir, file_name),
                               cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, 92]):
                raise OSError(f'could not write {osp.join(img_dir, file_name)}')
            images.append(dict(id=idx + 1, file_name=file_name, height=h,
                               width=w))
            for ann in anns:
                ann.update(id=len(annotations) + 1, image_id=idx + 1,
                           iscrowd=0)
                annotations.append(ann)
        coco = dict(
            info=dict(description=f'damoyolo_mm demo dataset ({split})',
                      version='1.0', seed=int(seed)),
            licenses=[], images=images, annotations=annotations,
            categories=categories)
        path = osp.join(out_dir, 'annotations', f'instances_{split}.json')
        with atomic_open(path, 'w') as f:
            json.dump(coco, f, sort_keys=True)
        paths[split] = path
    return paths


def demo_dataset_exists(out_dir: str = DEMO_DATA_ROOT,
                        expected: Optional[Dict[str, int]] = None) -> bool:
    """Whether a complete demo dataset is present under ``out_dir``."""
    for split in ('train', 'val'):
        path = osp.join(out_dir, 'annotations', f'instances_{split}.json')
        if not osp.isfile(path):
            return False
        with open(path) as f:
            images = json.load(f)['images']
        if expected is not None and len(images) != expected.get(split):
            return False
        if not all(osp.isfile(osp.join(out_dir, split, im['file_name']))
                   for im in images):
            return False
    return True
