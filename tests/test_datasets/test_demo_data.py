import hashlib
import json
import os.path as osp

import cv2
import pytest
from pycocotools.coco import COCO

from damoyolo_mm.datasets import (DEMO_CLASSES, demo_dataset_exists,
                                  generate_demo_dataset)


def _sha(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_deterministic_and_seed_dependent(tmp_path):
    a = generate_demo_dataset(str(tmp_path / 'a'), seed=3, num_train=6,
                              num_val=3)
    b = generate_demo_dataset(str(tmp_path / 'b'), seed=3, num_train=6,
                              num_val=3)
    c = generate_demo_dataset(str(tmp_path / 'c'), seed=4, num_train=6,
                              num_val=3)
    for split in ('train', 'val'):
        assert _sha(a[split]) == _sha(b[split])
        assert _sha(a[split]) != _sha(c[split])
    # images are identical too
    assert _sha(str(tmp_path / 'a' / 'train' / '000002.jpg')) == _sha(
        str(tmp_path / 'b' / 'train' / '000002.jpg'))


def test_coco_loading_and_content(demo_data_root):
    coco = COCO(osp.join(demo_data_root, 'annotations',
                         'instances_train.json'))
    cats = coco.loadCats(coco.getCatIds())
    assert [c['name'] for c in cats] == list(DEMO_CLASSES)
    imgs = coco.loadImgs(coco.getImgIds())
    assert len(imgs) == 16
    n_anns = [len(coco.getAnnIds(imgIds=[im['id']])) for im in imgs]
    assert sum(n_anns) > 16  # several objects per image on average
    widths, heights, aspects, labels = set(), set(), [], set()
    for im in imgs:
        img = cv2.imread(osp.join(demo_data_root, 'train', im['file_name']))
        assert img.shape[:2] == (im['height'], im['width'])
        widths.add(im['width'])
        heights.add(im['height'])
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=[im['id']])):
            x, y, w, h = ann['bbox']
            assert w > 0 and h > 0
            assert 0 <= x and x + w <= im['width']
            assert 0 <= y and y + h <= im['height']
            aspects.append(w / h)
            labels.add(ann['category_id'])
    assert len(widths) > 1 and len(heights) > 1  # varied image shapes
    assert min(aspects) < 0.8 and max(aspects) > 1.25  # varied box aspect
    assert len(labels) == len(DEMO_CLASSES)


def test_some_images_empty_and_colour_not_class(tmp_path):
    paths = generate_demo_dataset(str(tmp_path), seed=0, num_train=60,
                                  num_val=2)
    with open(paths['train']) as f:
        coco = json.load(f)
    with_objects = {a['image_id'] for a in coco['annotations']}
    assert len(coco['images']) - len(with_objects) >= 1
    # colour does not identify the class: mean box colour per class overlaps
    import numpy as np
    per_class = {}
    for ann in coco['annotations']:
        im = coco['images'][ann['image_id'] - 1]
        img = cv2.imread(str(tmp_path / 'train' / im['file_name']))
        x, y, w, h = ann['bbox']
        patch = img[y + h // 3:y + 2 * h // 3 + 1, x + w // 3:x + 2 * w // 3 + 1]
        per_class.setdefault(ann['category_id'], []).append(
            patch.reshape(-1, 3).mean(0))
    means = np.stack([np.mean(v, 0) for v in per_class.values()])
    stds = np.stack([np.std(v, 0) for v in per_class.values()])
    # class means differ by far less than the colour spread within a class
    assert np.ptp(means, axis=0).max() < stds.min(axis=0).max()


def test_exists_check(tmp_path):
    assert not demo_dataset_exists(str(tmp_path))
    generate_demo_dataset(str(tmp_path), num_train=2, num_val=1)
    assert demo_dataset_exists(str(tmp_path), dict(train=2, val=1))
    assert not demo_dataset_exists(str(tmp_path), dict(train=3, val=1))


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_train=0), 'num_train must be a positive integer'),
    (dict(num_val=-1), 'num_val must be a positive integer'),
    (dict(img_size=(32, 320)), 'img_size'),
    (dict(img_size=320), 'img_size'),
    (dict(empty_prob=1.5), 'empty_prob'),
])
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_demo_dataset(str(tmp_path), **kwargs)
