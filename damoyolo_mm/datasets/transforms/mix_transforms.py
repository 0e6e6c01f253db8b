"""Mosaic, random affine and MixUp with DAMO-YOLO's semantics.

DAMO-YOLO (like YOLOX) builds a training image as: 4-image mosaic on a
2x canvas -> random affine around the mosaic centre to the mosaic size ->
MixUp with probability 0.15 -> drop boxes with area <= 4 -> resize to the
training size without keeping the ratio -> flip -> SADA. mmdet's Mosaic,
RandomAffine and MixUp with :class:`~mmdet.datasets.MultiImageMixDataset`
follow the same order, but differ in details that change the data
distribution; the subclasses here restore DAMO-YOLO's behaviour:

* :class:`DAMOYOLOMosaic`: every sub-image is stretched to ``img_scale``
  (DAMO-YOLO's ``keep_ratio=False``) instead of being resized with its ratio
  kept; indexes are drawn in ``[0, len - 1]`` (mmdet 3.3 draws in
  ``[0, len]``, which can index past the end of the dataset).
* :class:`DAMOYOLORandomAffine`: the affine matrix is built around the
  centre of the input (``T @ Shear @ (Rot*Scale) @ Centre``), with the
  output centre drawn in ``(0.5 +- max_translate_ratio) * output size``.
  mmdet 3.3 rotates and scales around the image origin and shifts by
  ``+-max_translate_ratio``, which shows mostly the top-left part of the
  mosaic. Boxes are filtered with DAMO-YOLO's candidate rule (width and
  height > 2 px, area > 10 % of the scaled original, aspect ratio < 20);
  mmdet 3.3 only drops boxes outside the image.
* :class:`DAMOYOLOMixUp`: applied with probability ``prob`` (mmdet's MixUp
  has none) and only when the image has boxes; the image to mix in is
  chosen with the annotation list instead of loading up to 15 images; all
  boxes of area <= ``min_bbox_area`` are dropped afterwards, as DAMO-YOLO
  does at the end of its mosaic branch. Remaining difference: the canvas
  beyond a shrunk mix-in image is ``pad_val`` (mmdet) rather than 0.
"""
import math
import random
from typing import List, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.datasets.transforms import MixUp, Mosaic
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import autocast_box_type


def _stretch(results: dict, img_scale: Tuple[int, int]) -> dict:
    """Resize ``results['img']`` to ``img_scale`` (w, h) ignoring its ratio
    and rescale its boxes accordingly (in place)."""
    img = results['img']
    h, w = img.shape[:2]
    target_w, target_h = int(img_scale[0]), int(img_scale[1])
    if (w, h) == (target_w, target_h):
        return results
    results['img'] = mmcv.imresize(img, (target_w, target_h))
    results['img_shape'] = results['img'].shape[:2]
    if results.get('gt_bboxes', None) is not None:
        results['gt_bboxes'].rescale_([target_w / w, target_h / h])
    return results


@TRANSFORMS.register_module()
class DAMOYOLOMosaic(Mosaic):
    """mmdet's :class:`~mmdet.datasets.transforms.Mosaic` with DAMO-YOLO's
    sub-image resizing.

    Args:
        keep_ratio (bool): Keep the aspect ratio of each sub-image when fitting
            it into ``img_scale``. DAMO-YOLO uses False (stretch).
        **kwargs: Arguments of mmdet's Mosaic (``img_scale`` is (w, h)).
    """

    def __init__(self, *args, keep_ratio: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.keep_ratio = keep_ratio

    def get_indexes(self, dataset) -> List[int]:
        """Three random indexes in ``[0, len(dataset) - 1]``."""
        return [random.randint(0, len(dataset) - 1) for _ in range(3)]

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        if self.keep_ratio:
            return super().transform(results)
        _stretch(results, self.img_scale)
        for mix in results.get('mix_results', []):
            _stretch(mix, self.img_scale)
        return self._stretched_mosaic(results)

    def _stretched_mosaic(self, results: dict) -> dict:
        """mmdet 3.3's ``Mosaic.transform`` for sub-images that already have
        the size ``img_scale`` (same random draws, same output), without its
        deep copies of every sub-image (and of all four with the first) and
        its resize by 1.0: a third of the mosaic's time at 640 px."""
        # mmdet's transforms draw from numpy's global generator
        if np.random.uniform(0, 1) > self.prob:
            return results
        assert 'mix_results' in results
        img = results['img']
        w, h = int(self.img_scale[0]), int(self.img_scale[1])
        center = (int(np.random.uniform(*self.center_ratio_range) * w),
                  int(np.random.uniform(*self.center_ratio_range) * h))
        patches = [results] + list(results['mix_results'][:3])
        places = [
            self._mosaic_combine(loc, center, patch['img'].shape[:2][::-1])
            for loc, patch in zip(('top_left', 'top_right', 'bottom_left',
                                   'bottom_right'), patches)
        ]
        mosaic_img = self._canvas((h * 2, w * 2) + img.shape[2:], img.dtype,
                                  [p for p, _ in places])
        bboxes, labels, ignore = [], [], []
        for patch, place in zip(patches, places):
            img_i = patch['img']
            (x1_p, y1_p, x2_p, y2_p), (x1_c, y1_c, x2_c, y2_c) = place
            mosaic_img[y1_p:y2_p, x1_p:x2_p] = img_i[y1_c:y2_c, x1_c:x2_c]
            boxes = patch['gt_bboxes'].clone()
            boxes.translate_([x1_p - x1_c, y1_p - y1_c])
            bboxes.append(boxes)
            labels.append(patch['gt_bboxes_labels'])
            ignore.append(patch['gt_ignore_flags'])
        bboxes = bboxes[0].cat(bboxes, 0)
        if self.bbox_clip_border:
            bboxes.clip_([2 * h, 2 * w])
        inside = bboxes.is_inside([2 * h, 2 * w]).numpy()
        results['img'] = mosaic_img
        results['img_shape'] = mosaic_img.shape[:2]
        results['gt_bboxes'] = bboxes[inside]
        results['gt_bboxes_labels'] = np.concatenate(labels, 0)[inside]
        results['gt_ignore_flags'] = np.concatenate(ignore, 0)[inside]
        return results

    def _canvas(self, shape, dtype, pasted) -> np.ndarray:
        """The mosaic canvas with ``pad_val`` wherever no sub-image will be
        pasted: only the strips around the pasted rectangles
        ``(x1, y1, x2, y2)`` are filled when they tile their bounding
        rectangle (always for stretched sub-images)."""
        x1 = min(p[0] for p in pasted)
        y1 = min(p[1] for p in pasted)
        x2 = max(p[2] for p in pasted)
        y2 = max(p[3] for p in pasted)
        areas = sum(max(p[2] - p[0], 0) * max(p[3] - p[1], 0)
                    for p in pasted)
        if areas != (x2 - x1) * (y2 - y1) or x1 < 0 or y1 < 0 or \
                y2 > shape[0] or x2 > shape[1]:
            return np.full(shape, self.pad_val, dtype=dtype)
        canvas = np.empty(shape, dtype)
        canvas[:y1] = self.pad_val
        canvas[y2:] = self.pad_val
        canvas[y1:y2, :x1] = self.pad_val
        canvas[y1:y2, x2:] = self.pad_val
        return canvas

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f', keep_ratio={self.keep_ratio})'


@TRANSFORMS.register_module()
class DAMOYOLORandomAffine(BaseTransform):
    """Random rotation, scale, shear and translation about the image centre.

    The output has size ``img_scale`` (w, h); the centre of the input lands
    at ``(U(0.5 - t, 0.5 + t) * w, U(0.5 - t, 0.5 + t) * h)``.

    Required keys: ``img``, ``gt_bboxes``, ``gt_bboxes_labels``,
    ``gt_ignore_flags``. Modified keys: the same and ``img_shape``.

    Args:
        img_scale (tuple[int, int]): Output size (w, h). Defaults to
            (640, 640).
        max_rotate_degree (float): Rotation in ``U(-d, d)`` degrees.
        max_translate_ratio (float): ``t`` above.
        scaling_ratio_range (tuple[float, float]): Scale in ``U(lo, hi)``.
        max_shear_degree (float): x and y shear in ``U(-d, d)`` degrees.
        border_val (tuple[int]): Fill value. Defaults to (114, 114, 114).
        min_bbox_size (float): Boxes need width and height above this.
        min_area_ratio (float): Boxes need an area above this fraction of
            their (scaled) area before the transform.
        max_aspect_ratio (float): Boxes need an aspect ratio below this.
    """

    def __init__(self,
                 img_scale: Tuple[int, int] = (640, 640),
                 max_rotate_degree: float = 10.,
                 max_translate_ratio: float = 0.1,
                 scaling_ratio_range: Tuple[float, float] = (0.1, 2.0),
                 max_shear_degree: float = 2.,
                 border_val: Tuple[int, int, int] = (114, 114, 114),
                 min_bbox_size: float = 2.,
                 min_area_ratio: float = 0.1,
                 max_aspect_ratio: float = 20.) -> None:
        if not 0 <= max_translate_ratio <= 0.5:
            raise ValueError('max_translate_ratio must be in [0, 0.5], got '
                             f'{max_translate_ratio}')
        if not 0 < scaling_ratio_range[0] <= scaling_ratio_range[1]:
            raise ValueError('scaling_ratio_range must be (lo, hi) with '
                             f'0 < lo <= hi, got {scaling_ratio_range}')
        self.img_scale = tuple(int(v) for v in img_scale)
        self.max_rotate_degree = max_rotate_degree
        self.max_translate_ratio = max_translate_ratio
        self.scaling_ratio_range = tuple(scaling_ratio_range)
        self.max_shear_degree = max_shear_degree
        self.border_val = border_val
        self.min_bbox_size = min_bbox_size
        self.min_area_ratio = min_area_ratio
        self.max_aspect_ratio = max_aspect_ratio

    def _random_matrix(self, in_h: int, in_w: int) -> Tuple[np.ndarray,
                                                             float]:
        out_w, out_h = self.img_scale
        centre = np.eye(3)
        centre[0, 2], centre[1, 2] = -in_w / 2., -in_h / 2.
        angle = random.uniform(-self.max_rotate_degree,
                               self.max_rotate_degree)
        scale = random.uniform(*self.scaling_ratio_range)
        rot_scale = np.eye(3)
        rot_scale[:2] = cv2.getRotationMatrix2D(
            center=(0, 0), angle=angle, scale=scale)
        shear = np.eye(3)
        shear[0, 1] = math.tan(
            math.radians(
                random.uniform(-self.max_shear_degree,
                               self.max_shear_degree)))
        shear[1, 0] = math.tan(
            math.radians(
                random.uniform(-self.max_shear_degree,
                               self.max_shear_degree)))
        t = self.max_translate_ratio
        translate = np.eye(3)
        translate[0, 2] = random.uniform(0.5 - t, 0.5 + t) * out_w
        translate[1, 2] = random.uniform(0.5 - t, 0.5 + t) * out_h
        return translate @ shear @ rot_scale @ centre, scale

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        img = results['img']
        matrix, scale = self._random_matrix(*img.shape[:2])
        out_w, out_h = self.img_scale
        results['img'] = cv2.warpAffine(
            img, matrix[:2], dsize=(out_w, out_h),
            borderValue=self.border_val)
        results['img_shape'] = results['img'].shape[:2]

        bboxes = results['gt_bboxes']
        if len(bboxes) == 0:
            return results
        old = bboxes.tensor.numpy().astype(np.float64)
        n = len(old)
        corners = np.ones((n * 4, 3))
        corners[:, :2] = old[:, [0, 1, 2, 3, 0, 3, 2, 1]].reshape(n * 4, 2)
        corners = (corners @ matrix.T)[:, :2].reshape(n, 8)
        xs, ys = corners[:, 0::2], corners[:, 1::2]
        new = np.stack([xs.min(1), ys.min(1), xs.max(1), ys.max(1)], axis=1)
        new[:, 0::2] = new[:, 0::2].clip(0, out_w)
        new[:, 1::2] = new[:, 1::2].clip(0, out_h)

        w1, h1 = (old[:, 2] - old[:, 0]) * scale, (old[:, 3] - old[:, 1]) * \
            scale
        w2, h2 = new[:, 2] - new[:, 0], new[:, 3] - new[:, 1]
        eps = 1e-16
        aspect = np.maximum(w2 / (h2 + eps), h2 / (w2 + eps))
        keep = ((w2 > self.min_bbox_size) & (h2 > self.min_bbox_size)
                & (w2 * h2 / (w1 * h1 + eps) > self.min_area_ratio)
                & (aspect < self.max_aspect_ratio))
        results['gt_bboxes'] = type(bboxes)(new[keep].astype(np.float32))
        results['gt_bboxes_labels'] = results['gt_bboxes_labels'][keep]
        results['gt_ignore_flags'] = results['gt_ignore_flags'][keep]
        if 'gt_masks' in results:
            raise NotImplementedError(
                'DAMOYOLORandomAffine only supports boxes')
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(img_scale={self.img_scale}, '
                f'max_rotate_degree={self.max_rotate_degree}, '
                f'max_translate_ratio={self.max_translate_ratio}, '
                f'scaling_ratio_range={self.scaling_ratio_range}, '
                f'max_shear_degree={self.max_shear_degree})')


@TRANSFORMS.register_module()
class DAMOYOLOMixUp(MixUp):
    """mmdet's :class:`~mmdet.datasets.transforms.MixUp` applied with a
    probability, followed by DAMO-YOLO's small-box filter. uint8 images are
    mixed by :meth:`_mixup_uint8` (mmdet's output, about half the time).

    Args:
        prob (float): Probability of mixing. Defaults to 0.15.
        min_bbox_area (float): After the (optional) mixing, boxes with an area
            ``<= min_bbox_area`` pixels are dropped. Defaults to 4.
        **kwargs: Arguments of mmdet's MixUp (``img_scale`` is (w, h),
            ``ratio_range``, ``flip_ratio``, ``pad_val``, ``max_iters``).
    """

    def __init__(self,
                 *args,
                 prob: float = 0.15,
                 min_bbox_area: float = 4.,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not 0. <= prob <= 1.:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = prob
        self.min_bbox_area = min_bbox_area

    def get_indexes(self, dataset) -> Union[int, Sequence[int]]:
        """An index of an image with boxes, or ``[]`` when not mixing.

        The decision is drawn here so that no image is loaded when the
        mixing is skipped.
        """
        if random.random() >= self.prob:
            return []
        index = random.randint(0, len(dataset) - 1)
        for _ in range(self.max_iters):
            info = dataset.get_data_info(index)
            if any(not inst.get('ignore_flag', 0)
                   for inst in info.get('instances', [])):
                break
            index = random.randint(0, len(dataset) - 1)
        return [index]

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        mix = results.get('mix_results', [])
        if len(mix) == 1 and len(results['gt_bboxes']) > 0:
            if (results['img'].dtype == np.uint8
                    and mix[0]['img'].dtype == np.uint8
                    and results['img'].ndim == mix[0]['img'].ndim == 3):
                results = self._mixup_uint8(results)
            else:
                results = super().transform(results)
        bboxes = results['gt_bboxes']
        if len(bboxes) and self.min_bbox_area is not None:
            keep = (bboxes.areas > self.min_bbox_area).numpy()
            results['gt_bboxes'] = bboxes[keep]
            results['gt_bboxes_labels'] = results['gt_bboxes_labels'][keep]
            results['gt_ignore_flags'] = results['gt_ignore_flags'][keep]
        return results

    def _mixup_uint8(self, results: dict) -> dict:
        """mmdet 3.3's ``MixUp.transform`` for uint8 HWC images: the same
        random draws and the same output, about half the time at 640 px.

        mmdet pastes the (ratio-kept) mix-in image on a float64 canvas of
        ``pad_val``, resizes that canvas by the jitter factor in float64,
        casts it to uint8 on a ``pad_val`` canvas of at least the target
        size, crops the target size at a random offset and averages the two
        images in float32 with truncation to uint8. Here: the float64
        resize is kept (its rounding decides the truncation), only the
        crop is cast and copied, and the average of two uint8 values
        ``trunc(0.5 a + 0.5 b)`` (exact in float32) is ``(a + b) >> 1``.
        """
        retrieve = results['mix_results'][0]
        if retrieve['gt_bboxes'].shape[0] == 0:
            return results
        retrieve_img = retrieve['img']
        # mmdet's transforms module draws from numpy's generator
        jit_factor = np.random.uniform(*self.ratio_range)
        is_flip = np.random.uniform(0, 1) > self.flip_ratio
        scale_w, scale_h = self.dynamic_scale

        # 1.-2. ratio-kept resize, pasted top-left on a pad_val canvas
        scale_ratio = min(scale_h / retrieve_img.shape[0],
                          scale_w / retrieve_img.shape[1])
        retrieve_img = mmcv.imresize(
            retrieve_img, (int(retrieve_img.shape[1] * scale_ratio),
                           int(retrieve_img.shape[0] * scale_ratio)))
        out_img = np.full((scale_h, scale_w, 3), self.pad_val, np.float64)
        out_img[:retrieve_img.shape[0], :retrieve_img.shape[1]] = \
            retrieve_img
        # 3. scale jitter (float64, as mmdet)
        scale_ratio *= jit_factor
        out_img = mmcv.imresize(out_img, (int(out_img.shape[1] * jit_factor),
                                          int(out_img.shape[0] * jit_factor)))
        # 5. random crop of the pad_val canvas holding out_img (flipped in
        # 4.), cast to uint8 (truncation) before the flip
        ori_img = results['img']
        origin_h, origin_w = out_img.shape[:2]
        target_h, target_w = ori_img.shape[:2]
        x_offset, y_offset = 0, 0
        if max(origin_h, target_h) > target_h:
            y_offset = np.random.randint(0,
                                         max(origin_h, target_h) - target_h)
        if max(origin_w, target_w) > target_w:
            x_offset = np.random.randint(0,
                                         max(origin_w, target_w) - target_w)
        x_end = min(x_offset + target_w, origin_w)
        if is_flip:  # column x of the flipped image is origin_w - 1 - x
            part = out_img[y_offset:y_offset + target_h,
                           origin_w - x_end:origin_w - x_offset]
            part = cv2.flip(part.astype(np.uint8), 1)  # 1: around the y axis
        else:
            part = out_img[y_offset:y_offset + target_h, x_offset:x_end]
            part = part.astype(np.uint8)
        if part.shape[:2] == (target_h, target_w):
            cropped = part
        else:
            fill = np.array(self.pad_val, np.float64).astype(np.uint8)
            cropped = np.full((target_h, target_w, 3), fill, np.uint8)
            cropped[:part.shape[0], :part.shape[1]] = part

        # 6.-7. boxes (as mmdet)
        retrieve_gt_bboxes = retrieve['gt_bboxes']
        retrieve_gt_bboxes.rescale_([scale_ratio, scale_ratio])
        if self.bbox_clip_border:
            retrieve_gt_bboxes.clip_([origin_h, origin_w])
        if is_flip:
            retrieve_gt_bboxes.flip_([origin_h, origin_w],
                                     direction='horizontal')
        cp_retrieve_gt_bboxes = retrieve_gt_bboxes.clone()
        cp_retrieve_gt_bboxes.translate_([-x_offset, -y_offset])
        if self.bbox_clip_border:
            cp_retrieve_gt_bboxes.clip_([target_h, target_w])

        # 8. mix up: trunc(0.5 * a + 0.5 * b) of uint8 a, b
        mixup_img = np.add(ori_img, cropped, dtype=np.uint16)
        mixup_img >>= 1
        mixup_gt_bboxes = cp_retrieve_gt_bboxes.cat(
            (results['gt_bboxes'], cp_retrieve_gt_bboxes), dim=0)
        labels = np.concatenate(
            (results['gt_bboxes_labels'], retrieve['gt_bboxes_labels']), 0)
        ignore = np.concatenate(
            (results['gt_ignore_flags'], retrieve['gt_ignore_flags']), 0)
        inside = mixup_gt_bboxes.is_inside([target_h, target_w]).numpy()
        results['img'] = mixup_img.astype(np.uint8)
        results['img_shape'] = mixup_img.shape[:2]
        results['gt_bboxes'] = mixup_gt_bboxes[inside]
        results['gt_bboxes_labels'] = labels[inside]
        results['gt_ignore_flags'] = ignore[inside]
        return results

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + (
            f', prob={self.prob}, min_bbox_area={self.min_bbox_area})')
