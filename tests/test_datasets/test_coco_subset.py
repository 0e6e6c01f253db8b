"""coco_subset: a COCO file restricted to some of its classes."""
import json

import pytest

from damoyolo_mm.datasets import coco_subset


def _src(tmp_path):
    coco = dict(
        images=[dict(id=1, file_name='a.jpg', width=50, height=40),
                dict(id=2, file_name='b.jpg', width=50, height=40)],
        annotations=[
            dict(id=1, image_id=1, category_id=7, bbox=[1, 1, 5, 5]),
            dict(id=2, image_id=1, category_id=3, bbox=[2, 2, 5, 5]),
            dict(id=3, image_id=2, category_id=9, bbox=[3, 3, 5, 5]),
        ],
        categories=[dict(id=3, name='disk'), dict(id=7, name='ring'),
                    dict(id=9, name='cross')])
    path = tmp_path / 'src.json'
    path.write_text(json.dumps(coco))
    return str(path)


def test_subset_renumbers_and_drops(tmp_path):
    dst = str(tmp_path / 'out' / 'dst.json')
    counts = coco_subset(_src(tmp_path), dst, ['cross', 'disk'])
    assert counts == dict(images=2, annotations=2, dropped=1)
    with open(dst) as f:
        out = json.load(f)
    assert [(c['id'], c['name']) for c in out['categories']] == [
        (1, 'cross'), (2, 'disk')]
    assert [(a['id'], a['category_id']) for a in out['annotations']] == [
        (2, 2), (3, 1)]
    assert len(out['images']) == 2  # image 2 keeps its box, image 1 too
    assert out['info']['subset_classes'] == ['cross', 'disk']


def test_subset_refuses_unknown_or_repeated_classes(tmp_path):
    src = _src(tmp_path)
    with pytest.raises(ValueError) as err:
        coco_subset(src, str(tmp_path / 'x.json'), ['disk', 'square'])
    assert "['square']" in str(err.value) and src in str(err.value)
    with pytest.raises(ValueError, match='twice'):
        coco_subset(src, str(tmp_path / 'x.json'), ['disk', 'disk'])
    assert not (tmp_path / 'x.json').exists()
