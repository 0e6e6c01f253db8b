"""Write a COCO annotation file restricted to some of its classes.

Used to make a new task from an existing COCO-format dataset (e.g. the
fine-tuning demo's 3 of the 5 demo shape classes): the selected categories
are renumbered 1..K in the order given, their annotations kept, every other
annotation dropped. All images are kept (those without a selected object
become background images); their files are not touched, so the new file
uses the same image folder.
"""
import json
import os.path as osp
from typing import Dict, Sequence

from damoyolo_mm.utils.fileio import atomic_open


def coco_subset(src: str, dst: str, classes: Sequence[str]) -> Dict[str, int]:
    """Write ``dst``: the COCO file ``src`` with only ``classes``.

    Args:
        src (str): COCO annotation file to read.
        dst (str): Output path (written to a temporary name, then renamed).
        classes (Sequence[str]): Category names to keep, in the new order.

    Returns:
        dict: counts ``images``, ``annotations`` (kept) and ``dropped``.

    Raises:
        ValueError: ``classes`` is empty, repeats a name or names a category
            that ``src`` does not declare (the message names the file and
            the declared names).
    """
    classes = list(classes)
    if not classes:
        raise ValueError('coco_subset: give at least one class to keep')
    repeated = sorted({c for c in classes if classes.count(c) > 1})
    if repeated:
        raise ValueError(f'coco_subset: classes {repeated} given twice')
    try:
        with open(src, encoding='utf-8') as f:
            coco = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f'{src}: not valid JSON: {e.msg} at line {e.lineno}, '
                         f'column {e.colno}') from None
    if not isinstance(coco, dict) or not isinstance(
            coco.get('categories'), list):
        raise ValueError(f'{src}: not a COCO annotation file (no '
                         '"categories" list)')
    by_name = {c['name']: c for c in coco['categories']}
    unknown = [c for c in classes if c not in by_name]
    if unknown:
        raise ValueError(f'{src}: classes {unknown} are not categories of the '
                         f'file (it declares {sorted(by_name)})')
    new_id = {by_name[name]['id']: i + 1 for i, name in enumerate(classes)}
    categories = [dict(by_name[name], id=i + 1)
                  for i, name in enumerate(classes)]
    annotations = [
        dict(a, category_id=new_id[a['category_id']])
        for a in coco.get('annotations', []) if a['category_id'] in new_id
    ]
    out = dict(coco, categories=categories, annotations=annotations)
    info = dict(out.get('info') or {})
    info['subset_of'] = osp.basename(src)
    info['subset_classes'] = classes
    out['info'] = info
    with atomic_open(dst, 'w', encoding='utf-8') as f:
        json.dump(out, f, sort_keys=True)
    return dict(
        images=len(out.get('images', [])),
        annotations=len(annotations),
        dropped=len(coco.get('annotations', [])) - len(annotations))
