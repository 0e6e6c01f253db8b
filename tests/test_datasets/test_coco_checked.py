"""DAMOYOLOCocoDataset: annotation and image checks."""
import json
import os.path as osp
from unittest import mock

import cv2
import numpy as np
import pytest

from damoyolo_mm.datasets import (BadAnnotationError, BadImageError,
                                  DAMOYOLOCocoDataset)

CLASSES = ('disk', 'ring')
PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs'),
]


def _write(root, annotations, images=None, categories=None, files=True):
    images = images or [
        dict(id=1, file_name='a.jpg', width=100, height=80),
        dict(id=2, file_name='b.jpg', width=100, height=80),
    ]
    categories = categories or [
        dict(id=1, name='disk'), dict(id=2, name='ring')
    ]
    img_dir = osp.join(root, 'img')
    if files:
        import os
        os.makedirs(img_dir, exist_ok=True)
        for im in images:
            cv2.imwrite(osp.join(img_dir, im['file_name']),
                        np.full((im['height'], im['width'], 3), 90,
                                np.uint8))
    for i, ann in enumerate(annotations):
        ann.setdefault('id', 100 + i)
        ann.setdefault('image_id', 1)
        ann.setdefault('iscrowd', 0)
        ann.setdefault('area', 10.)
    path = osp.join(root, 'ann.json')
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=annotations,
                       categories=categories), f)
    return path


def _dataset(root, ann_file, **kwargs):
    kwargs.setdefault('pipeline', PIPELINE)
    return DAMOYOLOCocoDataset(
        data_root=str(root),
        ann_file=ann_file,
        data_prefix=dict(img='img/'),
        metainfo=dict(classes=kwargs.pop('classes', CLASSES)),
        filter_cfg=None,
        **kwargs)


def test_degenerate_and_outside_boxes_are_dropped_and_counted(tmp_path):
    ann = _write(tmp_path, [
        dict(bbox=[10, 10, 20, 20], category_id=1),  # kept
        dict(bbox=[10, 10, 0, 20], category_id=1),  # zero width
        dict(bbox=[10, 10, 5, -3], category_id=2),  # negative height
        dict(bbox=[120, 10, 20, 20], category_id=2),  # right of the image
        dict(bbox=[-30, -5, 20, 20], category_id=1),  # above / left
        dict(bbox=[90, 70, 30, 30], category_id=2, image_id=2),  # clipped
    ])
    with mock.patch(
            'damoyolo_mm.datasets.coco_checked.print_log') as log:
        ds = _dataset(tmp_path, ann)
    stats = ds.annotation_stats
    assert stats['zero_area'] == 2
    assert stats['outside_image'] == 2
    assert stats['clipped'] == 1
    assert stats['kept'] == 2
    message = log.call_args[0][0]
    assert 'dropped 4 boxes' in message and '2 with zero area' in message
    assert '2 outside the image' in message and 'clipped 1' in message
    infos = {d['img_id']: d for d in (ds.get_data_info(i)
                                      for i in range(len(ds)))}
    assert [i['bbox'] for i in infos[1]['instances']] == [[10, 10, 30, 30]]
    assert [i['bbox'] for i in infos[2]['instances']] == [[90, 70, 100, 80]]
    assert infos[2]['instances'][0]['bbox_label'] == 1


def test_unknown_category_is_refused_with_the_annotation_id(tmp_path):
    ann = _write(tmp_path, [
        dict(bbox=[10, 10, 20, 20], category_id=1),
        dict(id=77, bbox=[10, 10, 20, 20], category_id=9, image_id=2),
    ])
    with pytest.raises(BadAnnotationError) as err:
        _dataset(tmp_path, ann)
    text = str(err.value)
    assert 'annotation id 77' in text and 'category_id 9' in text
    assert 'b.jpg' in text and text.startswith(ann)


def test_unselected_class_is_dropped_but_missing_class_refused(tmp_path):
    ann = _write(tmp_path, [
        dict(bbox=[10, 10, 20, 20], category_id=1),
        dict(bbox=[10, 10, 20, 20], category_id=2),
    ])
    # a category of the file that the config does not list: refused unless
    # the subset is declared
    with pytest.raises(BadAnnotationError) as err:
        _dataset(tmp_path, ann, classes=('ring', ))
    text = str(err.value)
    assert "categories ['disk']" in text and ann in text
    assert 'class_subset=True' in text
    ds = _dataset(tmp_path, ann, classes=('ring', ), class_subset=True)
    assert ds.annotation_stats['unselected_class'] == 1
    assert ds.annotation_stats['kept'] == 1
    with pytest.raises(BadAnnotationError) as err:
        _dataset(tmp_path, ann, classes=('disk', 'ring', 'square'))
    assert "classes ['square']" in str(err.value) and ann in str(err.value)


def test_malformed_bbox_is_refused(tmp_path):
    ann = _write(tmp_path, [dict(id=5, bbox=[10, 10, 20], category_id=1)])
    with pytest.raises(BadAnnotationError, match='annotation id 5'):
        _dataset(tmp_path, ann)
    ann = _write(tmp_path,
                 [dict(id=6, bbox=[10, float('nan'), 2, 2], category_id=1)])
    with pytest.raises(BadAnnotationError, match='annotation id 6'):
        _dataset(tmp_path, ann)


def test_missing_and_corrupt_images_are_named(tmp_path):
    ann = _write(tmp_path, [dict(bbox=[10, 10, 20, 20], category_id=1),
                            dict(bbox=[1, 1, 5, 5], category_id=2,
                                 image_id=2)])
    ds = _dataset(tmp_path, ann)
    assert ds[0]['inputs'].shape == (3, 80, 100)
    # missing file
    import os
    os.remove(tmp_path / 'img' / 'a.jpg')
    with pytest.raises(BadImageError) as err:
        ds[0]
    assert 'a.jpg' in str(err.value) and 'img_id 1' in str(err.value)
    # corrupt file
    (tmp_path / 'img' / 'b.jpg').write_bytes(b'this is not a jpeg')
    with pytest.raises(BadImageError, match='b.jpg'):
        ds[1]


def test_skip_policy_replaces_bad_images_in_training_only(tmp_path):
    ann = _write(tmp_path, [dict(bbox=[10, 10, 20, 20], category_id=1),
                            dict(bbox=[1, 1, 5, 5], category_id=2,
                                 image_id=2)])
    (tmp_path / 'img').mkdir(exist_ok=True)
    ds = _dataset(tmp_path, ann, bad_image_policy='skip')
    (tmp_path / 'img' / 'a.jpg').write_bytes(b'\x00' * 20)
    for _ in range(3):
        sample = ds[0]  # another (good) image is returned
        assert sample['data_samples'].img_id == 2
    assert any(p.endswith('a.jpg') for p in ds.skipped_images)
    test_ds = _dataset(tmp_path, ann, bad_image_policy='skip', test_mode=True)
    with pytest.raises(BadImageError, match='a.jpg'):
        test_ds[0]
    with pytest.raises(ValueError, match='bad_image_policy'):
        _dataset(tmp_path, ann, bad_image_policy='ignore')


def test_errors_from_other_transforms_pass_through(tmp_path):
    ann = _write(tmp_path, [dict(bbox=[10, 10, 20, 20], category_id=1)])
    pipeline = PIPELINE[:2] + [dict(type='Resize', scale=(0, 0))]
    ds = _dataset(tmp_path, ann, pipeline=pipeline)
    with pytest.raises(Exception) as err:
        ds[0]
    assert not isinstance(err.value, BadImageError)


def test_demo_data_loads_without_drops(demo_data_root):
    ds = DAMOYOLOCocoDataset(
        data_root=demo_data_root,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        metainfo=dict(classes=('disk', 'rectangle', 'triangle', 'ring',
                               'cross')),
        pipeline=PIPELINE)
    assert ds.annotation_stats['kept'] > 0
    assert ds.annotation_stats['zero_area'] == 0
    assert ds.annotation_stats['outside_image'] == 0
    sample = ds[0]
    assert sample['inputs'].dtype.is_floating_point is False


def test_classes_in_another_order_than_the_file_are_refused(tmp_path):
    ann = _write(tmp_path, [dict(bbox=[10, 10, 20, 20], category_id=1)])
    with pytest.raises(BadAnnotationError) as err:
        _dataset(tmp_path, ann, classes=('ring', 'disk'))
    assert "['disk', 'ring']" in str(err.value) and ann in str(err.value)


# --- integrity of the image list (issue: labels corrupted without a word) --


def _ann(bbox=(10, 10, 20, 20), **kw):
    return dict(bbox=list(bbox), category_id=1, **kw)


def test_duplicate_image_ids_are_an_error(tmp_path):
    images = [dict(id=1, file_name='a.jpg', width=100, height=80),
              dict(id=1, file_name='b.jpg', width=100, height=80),
              dict(id=2, file_name='c.jpg', width=100, height=80)]
    ann = _write(str(tmp_path), [_ann(image_id=1), _ann(image_id=2)],
                 images=images)
    with pytest.raises(BadAnnotationError) as err:
        _dataset(tmp_path, ann)
    text = str(err.value)
    assert text.startswith(f'{ann}: image ids [1] are used by more than one')


def test_duplicate_file_names_error_or_warning(tmp_path):
    images = [dict(id=1, file_name='a.jpg', width=100, height=80),
              dict(id=2, file_name='a.jpg', width=100, height=80),
              dict(id=3, file_name='c.jpg', width=100, height=80)]
    ann = _write(str(tmp_path), [_ann(image_id=1), _ann(image_id=2)],
                 images=images)
    with pytest.raises(BadAnnotationError) as err:
        _dataset(tmp_path, ann)
    assert f"{ann}: 1 file names are listed by more than one image: " \
        "'a.jpg' (image ids [1, 2])" in str(err.value)
    assert 'allow_duplicate_file_names=True' in str(err.value)
    with mock.patch(
            'damoyolo_mm.datasets.coco_checked.print_log') as warn:
        ds = _dataset(tmp_path, ann, allow_duplicate_file_names=True)
    assert len(ds) == 3
    msgs = [str(c.args[0]) for c in warn.call_args_list]
    assert any('1 file names are listed by more than one image (2 images)'
               in m for m in msgs), msgs


def test_annotations_of_a_missing_image_error_or_warning(tmp_path):
    ann = _write(str(tmp_path), [
        _ann(image_id=1), _ann(image_id=7, id=55), _ann(image_id=8, id=56)])
    with pytest.raises(BadAnnotationError) as err:
        _dataset(tmp_path, ann)
    text = str(err.value)
    assert text.startswith(f'{ann}: 2 annotations (ids [55, 56]) have an '
                           'image_id that is no image of the file (image ids '
                           '[7, 8])'), text
    with mock.patch(
            'damoyolo_mm.datasets.coco_checked.print_log') as warn:
        ds = _dataset(tmp_path, ann, allow_orphan_annotations=True)
    assert sum(len(ds.get_data_info(i)['instances'])
               for i in range(len(ds))) == 1
    msgs = [str(c.args[0]) for c in warn.call_args_list]
    assert any('dropped 2 annotations whose image_id is no image' in m
               for m in msgs), msgs


def test_annotation_file_without_images(tmp_path):
    path = str(tmp_path / 'ann.json')
    with open(path, 'w') as f:
        json.dump(dict(images=[], annotations=[],
                       categories=[dict(id=1, name='disk'),
                                   dict(id=2, name='ring')]), f)
    with pytest.raises(BadAnnotationError,
                       match=f'^{path}: the annotation file has no images'):
        _dataset(tmp_path, path)


@pytest.mark.parametrize('wrapped', [False, True])
def test_width_height_disagreeing_with_the_image(tmp_path, wrapped):
    images = [dict(id=1, file_name='a.jpg', width=100, height=80),
              dict(id=2, file_name='b.jpg', width=100, height=80)]
    ann = _write(str(tmp_path), [_ann(image_id=1), _ann(image_id=2)],
                 images=images)
    # b.jpg is really 60 x 50 pixels
    cv2.imwrite(osp.join(str(tmp_path), 'img', 'b.jpg'),
                np.full((50, 60, 3), 90, np.uint8))
    ds = _dataset(tmp_path, ann)
    ds[0]  # a.jpg agrees
    if wrapped:
        from damoyolo_mm.datasets import DAMOYOLOMixDataset
        ds = DAMOYOLOMixDataset(dataset=ds, pipeline=[])
    with pytest.raises(BadAnnotationError) as err:
        ds[1]
    img = osp.join(str(tmp_path), 'img', 'b.jpg')
    assert str(err.value).startswith(
        f"image '{img}' (img_id 2) is 60x50 pixels, but {ann} gives width "
        '100, height 80'), str(err.value)
