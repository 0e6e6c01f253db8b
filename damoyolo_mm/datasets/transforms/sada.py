"""Scale-aware, box-level data augmentation (SADA) of DAMO-YOLO.

SADA ("scale-aware auto augmentation", SA-AutoAug) edits the image around
some of its boxes: a colour operation is blended into the image through
Gaussian windows centred on sampled boxes, and a geometric operation moves,
flips, rotates or shears the content of sampled boxes and blends it back.
Small boxes are sampled more often than large ones. DAMO-YOLO applies it to
every training image after resizing and flipping, with a probability that
grows linearly from 0 at the start of training to the policy's value at the
end (see :class:`~damoyolo_mm.engine.hooks.SADAProgressHook`).

The searched policy of DAMO-YOLO is encoded in ``autoaug_params`` (40
integers); the first 4 are unused, then come ``num_subpolicies`` groups of 6
(colour op, colour probability x10, colour level, geometric op, geometric
probability x10, geometric level) and 6 scale parameters (Gaussian size
index per scale range, sampling weight per scale range for colour ops;
sampling weight per scale range for geometric ops). Decoded, the default is::

    0: Color(level 2)       p 0.4 | translateX(level 4, 48 px) p 0.4
    1: Brightness(level 4)  p 0.2 | rotate(level 2, 6 deg)     p 0.4
    2: Sharpness(level 2)   p 0.4 | shearX(level 6, 9 deg)     p 0.2
    3: SolarizeAdd(level 2) p 0.2 | hflip                      p 0.5
    4: Color(level 8)       p 0.0 | translateY(level 8, 96 px) p 0.2

Differences from the reference implementation (all deliberate):

* Boxes created by a translation are clipped to the image and dropped when
  their clipped width or height is below ``min_bbox_size``; the pasted
  content uses the same (clamped) offset as the new box. The reference
  can emit boxes with negative coordinates and may paste the content at a
  different offset than the box it adds when the shift hits the border.
* The output keeps the input dtype (uint8 images are rounded back).
* Gaussian windows are computed as separable products (same values up to
  float rounding).
* Randomness comes from numpy's global generator, so ``np.random.seed``
  makes the transform deterministic.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import BaseBoxes

#: DAMO-YOLO's searched SADA policy (``autoaug_params``).
DAMOYOLO_SADA_PARAMS: Tuple[int, ...] = (
    6, 9, 5, 3, 3, 4, 2, 4, 4, 4, 5, 2, 4, 1, 4, 2, 6, 4, 2, 2, 2, 6, 2, 2, 2,
    0, 5, 1, 3, 0, 8, 5, 2, 8, 7, 5, 1, 3, 3, 3)

COLOR_OPS: Tuple[str, ...] = ('AutoContrast', 'Equalize', 'SolarizeAdd',
                              'Color', 'Contrast', 'Brightness', 'Sharpness')
GEOMETRIC_OPS: Tuple[str, ...] = ('hflip', 'rotate', 'shearX', 'shearY',
                                  'translateX', 'translateY')
# relative Gaussian window sizes selectable by the policy's scale indices
_WINDOW_RATIOS = (0.2, 0.4, 0.6, 0.8, 1.0, 2., 4., 6., 8., 10.)
_MAX_LEVEL = 10.
# fill value of rotated / sheared crops (RGB, 0..255)
_FILL_RGB = (102, 115, 122)
# colour operations whose value at a pixel depends only on that pixel
_PIXELWISE_COLOR_OPS = ('SolarizeAdd', 'Color', 'Brightness')
# below this window sum a colour operation (values in [0, 1]) moves a uint8
# pixel by less than 0.4 before rounding: the pixel keeps its value
_COLOR_THRESHOLD = 0.4 / 255.


def _uint8_round_trip() -> bool:
    """Whether every uint8 value survives SADA's float conversion and back
    (``round(float32(x) / 255 * 255) == x``)."""
    x = np.arange(256, dtype=np.uint8)
    back = np.clip(np.round((x.astype(np.float32) / 255.) * 255.), 0, 255)
    return bool(np.array_equal(back.astype(np.uint8), x))


_UINT8_ROUND_TRIP = _uint8_round_trip()


# --------------------------------------------------------------------------
# colour operations on float32 HWC RGB images in [0, 1]
# --------------------------------------------------------------------------
def _blend(img1: np.ndarray, img2: np.ndarray, factor: float) -> np.ndarray:
    """``img1 + factor * (img2 - img1)``, clipped unless interpolating."""
    if factor == 0.:
        return np.broadcast_to(img1, img2.shape).astype(np.float32)
    if factor == 1.:
        return img2
    out = img1 + factor * (img2 - img1)
    if 0. < factor < 1.:
        return out.astype(np.float32)
    return np.clip(out, 0., 1.).astype(np.float32)


def _gray(img: np.ndarray) -> np.ndarray:
    gray = (img[..., 0] * 0.2989 + img[..., 1] * 0.5870 +
            img[..., 2] * 0.1140)
    return np.repeat(gray[..., None], 3, axis=2)


def _color(img, factor):
    return _blend(_gray(img), img, factor)


def _contrast(img, factor):
    mean = np.float32(_gray(img).mean())
    return _blend(np.full_like(img, mean), img, max(factor, 1e-6))


def _brightness(img, factor):
    return _blend(np.zeros_like(img), img, factor)


def _sharpness(img, factor):
    kernel = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13.
    smooth = cv2.filter2D(
        img, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    return _blend(smooth, img, factor)


def _solarize_add(img, addition, threshold=0.5):
    added = np.clip(img + addition, 0., 1.)
    return np.where(img <= threshold, added, img).astype(np.float32)


def _autocontrast(img):
    out = img.copy()
    for c in range(3):
        lo, hi = img[..., c].min(), img[..., c].max()
        if hi > lo:
            out[..., c] = np.clip((img[..., c] - lo) / (hi - lo), 0., 1.)
    return out


def _equalize(img):
    out = np.empty_like(img)
    for c in range(3):
        chan = img[..., c] * 255.
        hist, _ = np.histogram(chan, bins=256, range=(0., 255.))
        nonzero = hist[hist != 0]
        step = (nonzero.sum() - nonzero[-1]) // 255 if len(nonzero) else 0
        if step == 0:
            out[..., c] = img[..., c]
            continue
        lut = (np.cumsum(hist) + step // 2) // step
        lut = np.clip(np.concatenate([[0], lut[:-1]]), 0, 255)
        idx = np.clip(chan.astype(np.int64), 0, 255)
        out[..., c] = lut[idx] / 255.
    return out


def _apply_color_op(name: str, img: np.ndarray, level: float) -> np.ndarray:
    factor = level / _MAX_LEVEL * 1.8 + 0.1
    if name == 'AutoContrast':
        return _autocontrast(img)
    if name == 'Equalize':
        return _equalize(img)
    if name == 'SolarizeAdd':
        return _solarize_add(img, level / _MAX_LEVEL * 0.4296875)
    if name == 'Color':
        return _color(img, factor)
    if name == 'Contrast':
        return _contrast(img, factor)
    if name == 'Brightness':
        return _brightness(img, factor)
    if name == 'Sharpness':
        return _sharpness(img, factor)
    raise ValueError(f'unknown SADA colour operation {name!r}; expected one '
                     f'of {COLOR_OPS}')


# --------------------------------------------------------------------------
# Gaussian windows
# --------------------------------------------------------------------------
def _gaussian_factors(height: int, width: int, center_y: float,
                      center_x: float, sigma_y: float,
                      sigma_x: float) -> Tuple[np.ndarray, np.ndarray]:
    """The row and column factors of :func:`_gaussian_window`."""
    ys = np.arange(height, dtype=np.float32) - np.float32(center_y)
    xs = np.arange(width, dtype=np.float32) - np.float32(center_x)
    with np.errstate(divide='ignore', invalid='ignore', over='ignore'):
        gy = np.exp(-(ys**2) / np.float32(2. * sigma_y**2))
        gx = np.exp(-(xs**2) / np.float32(2. * sigma_x**2))
    return gy, gx


def _gaussian_window(height: int, width: int, center_y: float,
                     center_x: float, sigma_y: float,
                     sigma_x: float) -> np.ndarray:
    """``exp(-(dy^2 / 2 sy^2 + dx^2 / 2 sx^2))`` on a ``height x width``
    pixel grid (separable product)."""
    gy, gx = _gaussian_factors(height, width, center_y, center_x, sigma_y,
                               sigma_x)
    return np.nan_to_num(np.outer(gy, gx).astype(np.float32))


def _scale_aware_factors(shape: Tuple[int, int], boxes: np.ndarray,
                         window_idx: Sequence[int],
                         splits: Sequence[float]) -> List[Tuple[np.ndarray,
                                                                np.ndarray]]:
    """Row and column factors of the Gaussian window of each box (xyxy).

    A box of area ``a`` gets a window of effective area ``r * a`` with ``r``
    chosen by its scale range, so that all small boxes get the same window
    area (``ratio[0] * splits[0]``).
    """
    height, width = shape
    ratios = [_WINDOW_RATIOS[i] for i in window_idx]
    factors = []
    for x1, y1, x2, y2 in boxes:
        h, w = y2 - y1, x2 - x1
        area = h * w
        if area <= 0:
            continue
        if area < splits[0]:
            scale = ratios[0] * splits[0] / area
        elif area < splits[1]:
            scale = ratios[1] * (splits[0] + splits[1]) / 2. / area
        elif area < splits[2]:
            scale = ratios[2] * splits[2] / area
        else:
            scale = ratios[2]
        radius = math.sqrt(scale * height * width / (2. * math.pi))
        factors.append(
            _gaussian_factors(height, width, y1 + (h // 2), x1 + (w // 2),
                              h / height * radius, w / width * radius))
    return factors


def _windows_from_factors(shape: Tuple[int, int],
                          factors: List[Tuple[np.ndarray, np.ndarray]],
                          rows: slice = slice(None),
                          cols: slice = slice(None)) -> np.ndarray:
    """``rows x cols`` part of the sum of the windows, clipped to [0, 1]
    (each element as in the full map: products and sums are elementwise,
    in box order)."""
    height, width = shape
    n_rows = len(range(*rows.indices(height)))
    n_cols = len(range(*cols.indices(width)))
    maps = np.zeros((n_rows, n_cols), np.float32)
    for gy, gx in factors:
        maps += np.nan_to_num(
            np.outer(gy[rows], gx[cols]).astype(np.float32))
    return np.clip(maps, 0., 1.)


def _scale_aware_windows(shape: Tuple[int, int], boxes: np.ndarray,
                         window_idx: Sequence[int],
                         splits: Sequence[float]) -> np.ndarray:
    """Sum of Gaussian windows over ``boxes`` (xyxy), clipped to [0, 1]
    (see :func:`_scale_aware_factors`)."""
    return _windows_from_factors(
        shape, _scale_aware_factors(shape, boxes, window_idx, splits))


def _significant_rect(factors: List[Tuple[np.ndarray, np.ndarray]],
                      threshold: float) -> Optional[Tuple[int, int, int,
                                                           int]]:
    """``(r1, r2, c1, c2)``: outside this rectangle the sum of the windows
    is below ``threshold`` (None: everywhere). Outside the rectangle of a
    box, its row or its column factor is below ``threshold / n`` and the
    other at most 1, so each of the ``n`` windows is below that."""
    rect = None
    limit = np.float32(threshold / max(len(factors), 1))
    for gy, gx in factors:
        rows = np.flatnonzero(~(gy < limit))  # NaN counts as significant
        cols = np.flatnonzero(~(gx < limit))
        if len(rows) == 0 or len(cols) == 0:
            continue
        rect = _union(rect, (int(rows[0]), int(rows[-1]) + 1, int(cols[0]),
                             int(cols[-1]) + 1))
    return rect


def _union(a: Optional[Tuple[int, int, int, int]],
           b: Optional[Tuple[int, int, int, int]]):
    """Bounding rectangle ``(r1, r2, c1, c2)`` of two (None: empty)."""
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]),
            max(a[3], b[3]))


def _paste_window(height: int, width: int) -> np.ndarray:
    """Isotropic window used to blend a moved crop back into the image."""
    sigma = math.sqrt(height * width / (2. * math.pi))
    return _gaussian_window(height, width, height // 2, width // 2, sigma,
                            sigma)


# --------------------------------------------------------------------------
# the transform
# --------------------------------------------------------------------------
@TRANSFORMS.register_module()
class SADA(BaseTransform):
    """Scale-aware box-level augmentation (DAMO-YOLO's ``SA_Aug``).

    Required keys: ``img``, ``gt_bboxes``, ``gt_bboxes_labels``; optional
    ``gt_ignore_flags``. Modified keys: ``img`` and, when a translation copies
    an object, ``gt_bboxes``, ``gt_bboxes_labels``, ``gt_ignore_flags``.

    Per image, one sub-policy is drawn; its colour operation is applied with
    probability ``p_color * progress`` and then its geometric operation with
    probability ``p_geo * progress``. Inside an applied operation, each box
    is sampled with probability ``box_prob * w(scale)``, where ``w`` are the
    policy's normalised per-scale weights and the scale ranges are
    ``scale_splits`` (areas in pixels at an 800-pixel short side, rescaled
    to the image).

    Args:
        box_prob (float): Base probability of sampling a box. Defaults to 0.3.
        num_subpolicies (int): Number of sub-policies. Defaults to 5.
        scale_splits (Sequence[float]): Box-area thresholds of the small /
            medium / large ranges. Defaults to (2048, 10240, 51200).
        autoaug_params (Sequence[int]): The policy (see module docstring).
            Defaults to DAMO-YOLO's searched policy.
        ramp (bool): Scale the operation probabilities by the training
            progress in [0, 1] (set by ``SADAProgressHook``, shared with the
            data loader workers). If False the progress is fixed at 1.
            Defaults to True, as in DAMO-YOLO; note that the progress starts
            at 0, so without the hook the transform does nothing.
        img_channel_order (str): 'bgr' (mmcv's loader) or 'rgb'. The colour
            operations are defined on RGB. Defaults to 'bgr'.
        min_bbox_size (float): Minimum width and height of a box added by a
            translation (after clipping). Defaults to 1.
    """

    def __init__(self,
                 box_prob: float = 0.3,
                 num_subpolicies: int = 5,
                 scale_splits: Sequence[float] = (2048, 10240, 51200),
                 autoaug_params: Sequence[int] = DAMOYOLO_SADA_PARAMS,
                 ramp: bool = True,
                 img_channel_order: str = 'bgr',
                 min_bbox_size: float = 1.) -> None:
        if not 0. <= box_prob <= 1.:
            raise ValueError(f'box_prob must be in [0, 1], got {box_prob}')
        if len(scale_splits) != 3 or list(scale_splits) != sorted(
                scale_splits):
            raise ValueError('scale_splits must be 3 increasing areas, got '
                             f'{scale_splits}')
        need = 4 + 6 * num_subpolicies + 6
        if len(autoaug_params) != need:
            raise ValueError(
                f'autoaug_params must have 4 + 6 * num_subpolicies + 6 = '
                f'{need} entries for num_subpolicies={num_subpolicies}, got '
                f'{len(autoaug_params)}')
        if img_channel_order not in ('bgr', 'rgb'):
            raise ValueError("img_channel_order must be 'bgr' or 'rgb', got "
                             f'{img_channel_order!r}')
        self.box_prob = float(box_prob)
        self.scale_splits = tuple(float(s) for s in scale_splits)
        self.img_channel_order = img_channel_order
        self.min_bbox_size = float(min_bbox_size)
        self.ramp = bool(ramp)
        self.policies, self.window_idx, self.color_weights, \
            self.geo_weights = self.decode_policy(autoaug_params,
                                                  num_subpolicies)
        # progress shared with forked / spawned data loader workers
        self._progress = torch.zeros(1, dtype=torch.float64)
        if self.ramp:
            self._progress.share_memory_()
        else:
            self._progress.fill_(1.)

    # ------------------------------------------------------------------
    @staticmethod
    def decode_policy(params: Sequence[int], num_subpolicies: int):
        """Decode ``autoaug_params`` into sub-policies and scale settings.

        Returns:
            tuple: ``(policies, window_idx, color_weights, geo_weights)``;
            each policy is ``((color_op, prob, level), (geo_op, prob,
            level))``; ``window_idx`` are the Gaussian size indices per scale
            range; the weights are normalised per-scale sampling weights.
        """
        p = [int(v) for v in params[4:]]
        policies = []
        for i in range(num_subpolicies):
            s = p[6 * i:6 * i + 6]
            policies.append(
                ((COLOR_OPS[s[0] % len(COLOR_OPS)], s[1] * 0.1, s[2]),
                 (GEOMETRIC_OPS[s[3] % len(GEOMETRIC_OPS)], s[4] * 0.1,
                  s[5])))
        tail = p[6 * num_subpolicies:]
        window_idx = tuple(tail[:3])
        if any(not 0 <= i < len(_WINDOW_RATIOS) for i in window_idx):
            raise ValueError('Gaussian size indices must be in [0, '
                             f'{len(_WINDOW_RATIOS)}), got {window_idx}')
        # colour ops sample boxes with the (normalised) window indices,
        # geometric ops with the last three values, as in the reference
        color_w = np.array(window_idx, np.float64)
        geo_w = np.array(tail[3:6], np.float64)
        if color_w.sum() <= 0 or geo_w.sum() <= 0:
            raise ValueError('SADA scale weights must not all be zero')
        return (policies, window_idx, tuple(color_w / color_w.sum()),
                tuple(geo_w / geo_w.sum()))

    @property
    def progress(self) -> float:
        """Training progress in [0, 1] that scales the probabilities."""
        return float(self._progress[0])

    def set_progress(self, progress: float) -> None:
        """Set the training progress (visible to data loader workers)."""
        if not self.ramp:
            return
        if not 0. <= progress <= 1.:
            raise ValueError(f'progress must be in [0, 1], got {progress}')
        self._progress[0] = float(progress)

    # ------------------------------------------------------------------
    def _box_probs(self, boxes: np.ndarray, weights: Sequence[float],
                   splits: Sequence[float]) -> np.ndarray:
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        idx = np.where(areas < splits[0], 0, np.where(areas < splits[1], 1,
                                                       2))
        probs = self.box_prob * np.asarray(weights)[idx]
        probs[~(areas > 0)] = 0.
        return probs

    def _color_boxes(self, boxes, op, splits) -> np.ndarray:
        """The boxes whose windows carry the colour operation ``op``
        (random draws)."""
        probs = self._box_probs(boxes, self.color_weights, splits)
        return boxes[np.random.rand(len(boxes)) < probs]

    def _geometric_plan(self, shape, boxes, op, splits):
        """Draws the boxes moved by the geometric operation ``op`` and its
        direction.

        Returns:
            tuple: ``(plan, added, added_src)``; ``plan`` is ``(name, angle,
            shear, steps)`` with one ``(source, target)`` pair of rectangles
            ``(r1, r2, c1, c2)`` per paste; ``added`` are the boxes added by
            a translation and ``added_src`` the indexes of the boxes they
            copy.
        """
        name, _, level = op
        probs = self._box_probs(boxes, self.geo_weights, splits)
        chosen = np.nonzero(np.random.rand(len(boxes)) < probs)[0]
        angle, shear, shift = 0., (0., 0.), (0., 0.)
        if name == 'rotate':
            angle = level / _MAX_LEVEL * 30.
        elif name == 'shearX':
            shear = (level / _MAX_LEVEL * 15., 0.)
        elif name == 'shearY':
            shear = (0., level / _MAX_LEVEL * 15.)
        elif name == 'translateX':
            shift = (level / _MAX_LEVEL * 120., 0.)
        elif name == 'translateY':
            shift = (0., level / _MAX_LEVEL * 120.)
        elif name != 'hflip':
            raise ValueError(f'unknown SADA geometric operation {name!r}; '
                             f'expected one of {GEOMETRIC_OPS}')
        if np.random.rand() < 0.5:
            angle, shear = -angle, (-shear[0], -shear[1])
            shift = (-shift[0], -shift[1])

        height, width = shape
        steps, added, added_src = [], [], []
        for i in chosen:
            x1, y1, x2, y2 = boxes[i]
            c1, r1 = int(max(x1, 0.)), int(max(y1, 0.))
            c2, r2 = int(min(x2, width)), int(min(y2, height))
            if c1 >= c2 or r1 >= r2:
                continue
            if name in ('translateX', 'translateY'):
                dx = int(np.clip(c2 + shift[0], 0, width)) - c2
                dy = int(np.clip(r2 + shift[1], 0, height)) - r2
                if dx == 0 and dy == 0:
                    continue
                new_box = np.array([x1 + dx, y1 + dy, x2 + dx, y2 + dy],
                                   np.float32)
                new_box[0::2] = np.clip(new_box[0::2], 0, width)
                new_box[1::2] = np.clip(new_box[1::2], 0, height)
                if (new_box[2] - new_box[0] >= self.min_bbox_size
                        and new_box[3] - new_box[1] >= self.min_bbox_size):
                    added.append(new_box)
                    added_src.append(i)
                # paste the visible part at the shifted place
                dc1, dr1 = max(c1 + dx, 0), max(r1 + dy, 0)
                dc2, dr2 = min(c2 + dx, width), min(r2 + dy, height)
                if dc1 >= dc2 or dr1 >= dr2:
                    continue
                steps.append(((dr1 - dy, dr2 - dy, dc1 - dx, dc2 - dx),
                              (dr1, dr2, dc1, dc2)))
            else:
                steps.append(((r1, r2, c1, c2), (r1, r2, c1, c2)))
        return (name, angle, shear, steps), added, added_src

    def _paste(self, img: np.ndarray, plan, origin=(0, 0)) -> np.ndarray:
        """Run ``plan`` on ``img``, a float RGB part of the image whose
        top-left pixel is ``origin`` (row, column) in the image and which
        holds every rectangle of the plan."""
        name, angle, shear, steps = plan
        oy, ox = origin
        out = img.copy()
        for (sr1, sr2, sc1, sc2), (r1, r2, c1, c2) in steps:
            crop = img[sr1 - oy:sr2 - oy, sc1 - ox:sc2 - ox]
            if name in ('translateX', 'translateY'):
                src = crop
            elif name == 'hflip':
                src = crop[:, ::-1]
            else:
                src = self._affine_crop(crop, angle, shear)
            window = _paste_window(r2 - r1, c2 - c1)[..., None]
            target = out[r1 - oy:r2 - oy, c1 - ox:c2 - ox]
            out[r1 - oy:r2 - oy, c1 - ox:c2 - ox] = (
                window * src + (1. - window) * target)
        return out

    @staticmethod
    def _affine_crop(crop: np.ndarray, angle: float,
                     shear: Tuple[float, float]) -> np.ndarray:
        """Rotate / shear a crop about its centre, filling with the mean."""
        h, w = crop.shape[:2]
        rot, sx, sy = (math.radians(angle), math.radians(shear[0]),
                       math.radians(shear[1]))
        a = math.cos(rot - sy) / math.cos(sy)
        b = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
        c = math.sin(rot - sy) / math.cos(sy)
        d = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
        cx, cy = (w - 1) * 0.5, (h - 1) * 0.5
        matrix = np.array([[a, b, cx - a * cx - b * cy],
                           [c, d, cy - c * cx - d * cy]], np.float64)
        fill = tuple(v / 255. for v in _FILL_RGB)
        return cv2.warpAffine(
            np.ascontiguousarray(crop), matrix, (w, h),
            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
            borderValue=fill)

    # ------------------------------------------------------------------
    def _to_float(self, img: np.ndarray) -> np.ndarray:
        """RGB float32 in [0, 1] (contiguous)."""
        work = img.astype(np.float32) / 255.
        if self.img_channel_order == 'bgr':
            work = work[..., ::-1]
        return np.ascontiguousarray(work)

    def _from_float(self, work: np.ndarray, dtype) -> np.ndarray:
        if self.img_channel_order == 'bgr':
            work = work[..., ::-1]
        work = work * 255.
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            work = np.clip(np.round(work), info.min, info.max)
        return np.ascontiguousarray(work.astype(dtype))

    def transform(self, results: Dict) -> Dict:
        """Apply one randomly drawn sub-policy to ``results``.

        The colour operation is blended in as ``img * (1 - w) + op(img) *
        w`` and the geometric one pastes crops, in float32 RGB in [0, 1].
        For uint8 images only the part of the image that can change is
        converted to float and back (the output is the same as converting
        the whole image): uint8 values survive the round trip
        (``_UINT8_ROUND_TRIP``); with no box drawn an operation changes
        nothing; outside the pasted rectangles the geometric operation
        changes nothing; where the window sum ``w`` is below
        ``_COLOR_THRESHOLD`` (< 0.5 / 255) the blended value rounds back to
        the input since colour operations stay in [0, 1].
        """
        img = results['img']
        gt = results.get('gt_bboxes')
        is_box_obj = isinstance(gt, BaseBoxes)
        if gt is None:
            boxes = np.zeros((0, 4), np.float32)
        elif is_box_obj:
            boxes = gt.tensor.numpy().astype(np.float32)
        else:
            boxes = np.asarray(gt, np.float32).reshape(-1, 4)

        policy = self.policies[np.random.randint(len(self.policies))]
        progress = self.progress
        if len(boxes) == 0 or progress > 1.:
            return results
        apply_color = np.random.rand() <= policy[0][1] * progress
        apply_geo = np.random.rand() <= policy[1][1] * progress
        if not (apply_color or apply_geo):
            return results

        shape = height, width = img.shape[:2]
        ratio = min(height, width) / 800.
        splits = [s * ratio for s in self.scale_splits]
        color_boxes = self._color_boxes(boxes, policy[0], splits) \
            if apply_color else boxes[:0]
        plan, added, added_src = self._geometric_plan(
            shape, boxes, policy[1], splits) if apply_geo else (None, [], [])
        factors = _scale_aware_factors(shape, color_boxes, self.window_idx,
                                       splits)

        if img.dtype == np.uint8 and _UINT8_ROUND_TRIP:
            rect = None  # the part that can change
            if factors:
                rect = _significant_rect(factors, _COLOR_THRESHOLD)
            for source, target in plan[3] if plan else []:
                rect = _union(_union(rect, source), target)
        else:  # other types: the whole image, always
            rect = (0, height, 0, width)
        if rect is not None:
            r1, r2, c1, c2 = rect
            rows, cols = slice(r1, r2), slice(c1, c2)
            work = self._to_float(img[rows, cols])
            if apply_color and (factors or img.dtype != np.uint8):
                name, _, level = policy[0]
                if name in _PIXELWISE_COLOR_OPS:
                    augmented = _apply_color_op(name, work, level)
                else:
                    augmented = _apply_color_op(
                        name, self._to_float(img), level)[rows, cols]
                windows = _windows_from_factors(shape, factors, rows,
                                                cols)[..., None]
                work = work * (1. - windows) + augmented * windows
            if plan is not None:
                work = self._paste(work, plan, origin=(r1, c1))
            work = self._from_float(work, img.dtype)
            if (r1, r2, c1, c2) == (0, height, 0, width):
                results['img'] = work
            else:
                out = img.copy()  # C order
                out[rows, cols] = work
                results['img'] = out

        if added:
            if 'gt_masks' in results:
                raise NotImplementedError(
                    'SADA translations copy boxes; instance masks are not '
                    'supported')
            new = np.stack(added).astype(np.float32)
            all_boxes = np.concatenate([boxes, new], axis=0)
            results['gt_bboxes'] = type(gt)(all_boxes) if is_box_obj \
                else all_boxes
            src = np.asarray(added_src, np.int64)
            results['gt_bboxes_labels'] = np.concatenate([
                results['gt_bboxes_labels'],
                results['gt_bboxes_labels'][src]
            ])
            if 'gt_ignore_flags' in results:
                results['gt_ignore_flags'] = np.concatenate([
                    results['gt_ignore_flags'],
                    results['gt_ignore_flags'][src]
                ])
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(box_prob={self.box_prob}, '
                f'num_subpolicies={len(self.policies)}, '
                f'scale_splits={self.scale_splits}, ramp={self.ramp}, '
                f'img_channel_order={self.img_channel_order!r})')
