"""COCO-format dataset that checks its annotations and images."""
import json
import logging
import math
from collections import Counter
from typing import List, Optional, Union

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from mmengine.logging import print_log


class BadImageError(OSError):
    """An image file of the dataset is missing or cannot be decoded."""


class BadAnnotationError(ValueError):
    """An annotation of the dataset is invalid (names the annotation id)."""


def _is_image_read_error(err: BaseException, img_path: Optional[str]) -> bool:
    """Whether ``err`` (raised by the pipeline) comes from reading the image.

    mmcv's ``LoadImageFromFile`` raises ``FileNotFoundError`` for a missing
    file and ``AssertionError('failed to load image: <path>')`` for bytes
    that do not decode.
    """
    if isinstance(err, OSError):
        return True
    return bool(img_path) and str(img_path) in str(err)


def _few(values, n: int = 10) -> str:
    """The first ``n`` values, then how many more."""
    values = list(values)
    shown = ', '.join(repr(v) for v in values[:n])
    more = f', ... ({len(values)} in all)' if len(values) > n else ''
    return f'[{shown}{more}]'


@DATASETS.register_module()
class DAMOYOLOCocoDataset(CocoDataset):
    """:class:`~mmdet.datasets.CocoDataset` with explicit data checks.

    Annotation checks (at load time, once):

    * an annotation file that is not valid JSON raises
      :class:`BadAnnotationError` naming the file, line and column;
    * an annotation file without images, two images with the same ``id``
      (pycocotools keeps one, and both images' boxes go to it), two images
      with the same ``file_name`` and annotations whose ``image_id`` is no
      image of the file (mmdet drops them silently) raise
      :class:`BadAnnotationError` naming the file and the ids. With
      ``allow_duplicate_file_names=True`` / ``allow_orphan_annotations=True``
      the last two are one warning with the counts instead (the orphan
      annotations are dropped);
    * an annotation whose ``category_id`` is not declared in the file's
      ``categories`` raises :class:`BadAnnotationError` naming the annotation
      id, image and category id (mmdet silently drops it);
    * a class of ``metainfo['classes']`` that is not a category name of the
      file, or classes listed in another order than the file's categories
      (mmdet numbers the labels in the file's order), raise
      :class:`BadAnnotationError`;
    * a malformed ``bbox`` (not 4 finite numbers) raises
      :class:`BadAnnotationError` naming the annotation id;
    * boxes with zero (or negative) width / height and boxes entirely
      outside the image are dropped, boxes partly outside are clipped to the
      image (as DAMO-YOLO's loader does); the counts are logged as one
      warning per dataset and kept in :attr:`annotation_stats`;
    * a category of the file that is not a class of ``metainfo['classes']``
      raises :class:`BadAnnotationError` (its boxes would silently become
      background); with ``class_subset=True`` (training on some of the
      file's classes on purpose) its annotations are dropped instead
      (counted as ``unselected_class``), as in mmdet;
    * ``iscrowd`` boxes are kept as ignored instances, as in mmdet.

    Image checks (when an item is loaded): an image whose size differs from
    the file's ``width`` / ``height`` raises :class:`BadAnnotationError`
    naming the image, its id and both sizes (the boxes were clipped to the
    file's size; ``check_image_size=False`` turns this check off). A
    missing or undecodable image
    raises :class:`BadImageError` naming the file and image id. With
    ``bad_image_policy='skip'`` the image is reported as a warning and
    skipped during training instead (mmengine then draws another index); at
    test time a bad image is always an error.

    Args:
        bad_image_policy (str): 'raise' (default) or 'skip'.
        class_subset (bool): Allow ``metainfo['classes']`` to be a subset
            of the file's categories (the others are dropped). Defaults to
            False: the classes must be exactly the file's categories.
        allow_duplicate_file_names (bool): Several images of the file may
            name the same image file (a warning with the count). Defaults
            to False (an error).
        allow_orphan_annotations (bool): Annotations whose ``image_id`` is
            no image of the file are dropped with a warning (the count).
            Defaults to False (an error).
        check_image_size (bool): Compare the size of each image read with
            its ``width`` / ``height`` in the file. Defaults to True.
        **kwargs: Arguments of :class:`~mmdet.datasets.CocoDataset`.
    """

    def __init__(self,
                 *args,
                 bad_image_policy: str = 'raise',
                 class_subset: bool = False,
                 allow_duplicate_file_names: bool = False,
                 allow_orphan_annotations: bool = False,
                 check_image_size: bool = True,
                 **kwargs):
        if bad_image_policy not in ('raise', 'skip'):
            raise ValueError("bad_image_policy must be 'raise' or 'skip', "
                             f'got {bad_image_policy!r}')
        self.bad_image_policy = bad_image_policy
        self.class_subset = bool(class_subset)
        self.allow_duplicate_file_names = bool(allow_duplicate_file_names)
        self.allow_orphan_annotations = bool(allow_orphan_annotations)
        self.check_image_size = bool(check_image_size)
        #: category names of the annotation file, in its order (set when
        #: the file is loaded)
        self.file_categories: Optional[List[str]] = None
        self.annotation_stats: Counter = Counter()
        self.skipped_images: List[str] = []
        self._declared_cat_ids: Optional[set] = None
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------
    # annotations
    # ------------------------------------------------------------------
    def load_data_list(self) -> List[dict]:
        """Load the annotations, then log what was dropped or clipped."""
        self.annotation_stats = Counter()
        self._declared_cat_ids = None
        try:
            data_list = super().load_data_list()
        except json.JSONDecodeError as e:
            raise BadAnnotationError(
                f'{self.ann_file}: not valid JSON: {e.msg} at line '
                f'{e.lineno}, column {e.colno} (character {e.pos})') from None
        except UnicodeDecodeError as e:
            raise BadAnnotationError(
                f'{self.ann_file}: not a UTF-8 text (JSON) file: byte '
                f'{e.start}: {e.reason}') from None
        if not data_list:
            raise BadAnnotationError(
                f'{self.ann_file}: the annotation file has no images (its '
                '"images" list is empty or missing); a COCO file lists each '
                'image with its id, file_name, width and height')
        stats = self.annotation_stats
        dropped = stats['zero_area'] + stats['outside_image']
        if dropped or stats['clipped']:
            print_log(
                f'{self.__class__.__name__}({self.ann_file}): dropped '
                f'{dropped} boxes ({stats["zero_area"]} with zero area, '
                f'{stats["outside_image"]} outside the image), clipped '
                f'{stats["clipped"]} boxes to the image',
                logger='current',
                level=logging.WARNING)
        return data_list

    def _check_images(self) -> None:
        """Duplicate image ids / file names, annotations of no image."""
        raw = self.coco.dataset
        images = raw.get('images') or []
        ids = Counter(img.get('id') for img in images)
        dup_ids = sorted((i for i, n in ids.items() if n > 1), key=repr)
        if dup_ids:
            raise BadAnnotationError(
                f'{self.ann_file}: image ids {_few(dup_ids)} are used by '
                f'more than one image ({len(dup_ids)} ids); only one image '
                'of each would be kept and given the boxes of all, so give '
                'every image its own id')
        names = Counter(img.get('file_name') for img in images)
        dup_names = sorted(n for n, k in names.items() if k > 1)
        if dup_names:
            ids_of = {}
            for img in images:
                if img.get('file_name') in names and \
                        names[img.get('file_name')] > 1:
                    ids_of.setdefault(img.get('file_name'),
                                      []).append(img.get('id'))
            detail = ', '.join(f'{n!r} (image ids {ids_of[n]})'
                               for n in dup_names[:5])
            if not self.allow_duplicate_file_names:
                raise BadAnnotationError(
                    f'{self.ann_file}: {len(dup_names)} file names are listed '
                    f'by more than one image: {detail}'
                    f'{" ..." if len(dup_names) > 5 else ""}; merge their '
                    'annotations into one image, or set '
                    'allow_duplicate_file_names=True in the dataset config '
                    'to train on each entry as it is')
            print_log(
                f'{self.__class__.__name__}({self.ann_file}): '
                f'{len(dup_names)} file names are listed by more than one '
                f'image ({sum(names[n] for n in dup_names)} images), e.g. '
                f'{detail[:200]} (allow_duplicate_file_names=True)',
                logger='current', level=logging.WARNING)
        orphans = [(a.get('id'), a.get('image_id'))
                   for a in raw.get('annotations') or []
                   if a.get('image_id') not in ids]
        if orphans:
            missing = sorted({i for _, i in orphans}, key=repr)
            if not self.allow_orphan_annotations:
                raise BadAnnotationError(
                    f'{self.ann_file}: {len(orphans)} annotations (ids '
                    f'{_few([a for a, _ in orphans])}) have an image_id that '
                    f'is no image of the file (image ids {_few(missing)}); '
                    'add those images, fix the image_id, or set '
                    'allow_orphan_annotations=True in the dataset config to '
                    'drop them')
            print_log(
                f'{self.__class__.__name__}({self.ann_file}): dropped '
                f'{len(orphans)} annotations whose image_id is no image of '
                f'the file ({len(missing)} image ids, e.g. {_few(missing)}; '
                'allow_orphan_annotations=True)', logger='current',
                level=logging.WARNING)

    def _check_categories(self) -> None:
        self._check_images()
        cats = self.coco.dataset.get('categories', [])
        self.file_categories = [c.get('name') for c in cats]
        self._declared_cat_ids = {c['id'] for c in cats}
        names = {c['name'] for c in cats}
        classes = list(self.metainfo['classes'])
        missing = [c for c in classes if c not in names]
        if missing:
            raise BadAnnotationError(
                f'{self.ann_file}: classes {missing} of the dataset config '
                f'are not categories of the annotation file (it declares '
                f'{sorted(names)})')
        extra = [c['name'] for c in cats if c['name'] not in classes]
        if extra and not self.class_subset:
            raise BadAnnotationError(
                f'{self.ann_file}: categories {extra} of the annotation file '
                f'are not classes of the dataset config (metainfo classes: '
                f'{classes}); add them to metainfo["classes"] (and the '
                'head\'s num_classes), or set class_subset=True in the '
                'dataset config to drop their boxes on purpose')
        # mmdet numbers the labels in the file's category order
        in_file_order = [c['name'] for c in cats if c['name'] in classes]
        if in_file_order != classes:
            raise BadAnnotationError(
                f'{self.ann_file}: metainfo classes {classes} are not in the '
                f'order of the file\'s categories {in_file_order}; labels '
                'follow the file\'s order, so list the classes in that order')

    def parse_data_info(self, raw_data_info: dict) -> Union[dict, List[dict]]:
        """Parse one image's annotations with the checks described above."""
        if self._declared_cat_ids is None:
            self._check_categories()
        img_info = raw_data_info['raw_img_info']
        ann_info = raw_data_info['raw_ann_info']
        data_info = super().parse_data_info({
            'raw_ann_info': [],
            'raw_img_info': img_info
        })
        file_name = img_info.get('file_name')
        try:
            width, height = float(img_info['width']), float(
                img_info['height'])
        except (KeyError, TypeError, ValueError) as err:
            raise BadAnnotationError(
                f'{self.ann_file}: image id {img_info.get("img_id")} '
                f'({file_name}) has no valid width/height: {err!r}') from err

        instances = []
        for ann in ann_info:
            if ann.get('ignore', False):
                continue
            ann_id = ann.get('id')
            cat_id = ann.get('category_id')
            if cat_id not in self._declared_cat_ids:
                raise BadAnnotationError(
                    f'{self.ann_file}: annotation id {ann_id} (image id '
                    f'{img_info.get("img_id")}, {file_name}) has category_id '
                    f'{cat_id!r}, which is not a category of the file '
                    f'(declared ids: {sorted(self._declared_cat_ids)})')
            if cat_id not in self.cat2label:
                self.annotation_stats['unselected_class'] += 1
                continue
            bbox = ann.get('bbox')
            try:
                x1, y1, w, h = (float(v) for v in bbox)
                ok = all(math.isfinite(v) for v in (x1, y1, w, h))
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise BadAnnotationError(
                    f'{self.ann_file}: annotation id {ann_id} (image id '
                    f'{img_info.get("img_id")}, {file_name}) has an invalid '
                    f'bbox {bbox!r}; expected [x, y, width, height]')
            if w <= 0 or h <= 0:
                self.annotation_stats['zero_area'] += 1
                continue
            x2, y2 = x1 + w, y1 + h
            cx1, cy1 = min(max(x1, 0.), width), min(max(y1, 0.), height)
            cx2, cy2 = min(max(x2, 0.), width), min(max(y2, 0.), height)
            if cx2 <= cx1 or cy2 <= cy1:
                self.annotation_stats['outside_image'] += 1
                continue
            if (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2):
                self.annotation_stats['clipped'] += 1
            instance = dict(
                ignore_flag=1 if ann.get('iscrowd', False) else 0,
                bbox=[cx1, cy1, cx2, cy2],
                bbox_label=self.cat2label[cat_id])
            if ann.get('segmentation', None):
                instance['mask'] = ann['segmentation']
            instances.append(instance)
            self.annotation_stats['kept'] += 1
        data_info['instances'] = instances
        return data_info

    # ------------------------------------------------------------------
    # images
    # ------------------------------------------------------------------
    def prepare_data(self, idx: int):
        """Run the pipeline; name the file when its image cannot be read."""
        data_info = self.get_data_info(idx)
        img_path = data_info.get('img_path')
        try:
            results = self.pipeline(data_info)
            self._check_image_size(results, data_info)
            return results
        except (BadImageError, BadAnnotationError):
            raise
        except Exception as err:
            if not _is_image_read_error(err, img_path):
                raise
            where = (f'image {img_path!r} (img_id {data_info.get("img_id")}, '
                     f'dataset {self.ann_file})')
            if self.bad_image_policy == 'skip' and not self.test_mode:
                self.skipped_images.append(str(img_path))
                print_log(
                    f'skipping unreadable {where}: '
                    f'{type(err).__name__}: {err}',
                    logger='current',
                    level=logging.WARNING)
                return None
            raise BadImageError(f'cannot read {where}: '
                                f'{type(err).__name__}: {err}') from err

    def _check_image_size(self, results, data_info: dict) -> None:
        """The size of the image read (``ori_shape``, set by the loading
        transform) must be the ``width`` / ``height`` of the file."""
        if not self.check_image_size or not isinstance(results, dict):
            return
        shape = results.get('ori_shape')
        if shape is None and results.get('data_samples') is not None:
            shape = getattr(results['data_samples'], 'metainfo',
                            {}).get('ori_shape')
        width, height = data_info.get('width'), data_info.get('height')
        if shape is None or width is None or height is None:
            return
        read_h, read_w = int(shape[0]), int(shape[1])
        if (read_h, read_w) != (int(height), int(width)):
            raise BadAnnotationError(
                f'image {data_info.get("img_path")!r} (img_id '
                f'{data_info.get("img_id")}) is {read_w}x{read_h} pixels, but '
                f'{self.ann_file} gives width {width}, height {height}; its '
                'boxes were checked against the wrong size: correct width / '
                'height of this image in the annotation file (or set '
                'check_image_size=False in the dataset config)')
