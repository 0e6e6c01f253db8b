"""Comparing two post-NMS detection sets without depending on the CPU.

Two runs of the same model (official vs ours, NCHW vs channels-last, PyTorch
vs ONNX Runtime, AVX-512 vs AVX2 kernels, 1 vs 2 threads) give raw outputs
that differ by float rounding. Greedy NMS turns some of these tiny
differences into different sets: two overlapping boxes of one class whose
scores differ by less than the rounding swap their order, one IoU that lies
at the threshold within the box error flips a suppression, a candidate at
the score threshold comes and goes, and what changes below such a point of
the ranking (the boxes a flipped box suppresses, the ``max_per_img`` cut) is
not determined either. Counting unmatched detections and allowing "a few"
depends on the weights and on the CPU; this judge instead derives, from the
raw outputs and the tolerances that bound their difference, which
detections are *determined*, and requires every determined detection to
have a partner on the other side.

Per class, :func:`determined_kept` runs the head's greedy NMS (candidates
``score > score_thr``; a candidate whose IoU with a kept box of its class is
``> iou_thr`` is dropped) in three-valued logic: scores closer than the
tolerance form groups whose order is open, IoUs are bounded under box moves
of the tolerance, and a kept box is present in every case, in some, or is
one of a group's near-identical alternatives. The detections it keeps in
every case as one box are *determined*. With both sides' raw outputs at
hand, their measured difference (plus the rounding of an IoU computed in
float32) is used as the tolerance there, so the judge is as sharp as the
two runs allow. A side holding ``max_per_img`` detections was cut at its
lowest score; a detection is determined only above both cuts (by twice the
score tolerance). Every determined detection of either side must have a
partner on the other.
"""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from numerics import at_least

Dets = Dict[str, np.ndarray]

#: box move (px) that bounds the rounding of an IoU computed in float32 by
#: another implementation (coordinates up to ~1000 px)
IOU_EPS = 1e-4


def _np(x) -> np.ndarray:
    if hasattr(x, 'detach'):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def as_dets(d) -> Dets:
    """``InstanceData`` / dict of tensors or arrays -> dict of numpy arrays
    (``bboxes`` (K, 4), ``scores`` (K,), ``labels`` (K,))."""
    get = (lambda k: d[k]) if isinstance(d, dict) else (
        lambda k: getattr(d, k))
    return dict(bboxes=_np(get('bboxes')).astype(np.float64).reshape(-1, 4),
                scores=_np(get('scores')).astype(np.float64).reshape(-1),
                labels=_np(get('labels')).astype(np.int64).reshape(-1))


def _area(b: np.ndarray) -> np.ndarray:
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(
        b[..., 3] - b[..., 1], 0, None)


def _inter(b: np.ndarray, k: np.ndarray) -> np.ndarray:
    w = np.minimum(b[2], k[:, 2]) - np.maximum(b[0], k[:, 0])
    h = np.minimum(b[3], k[:, 3]) - np.maximum(b[1], k[:, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def iou_bounds(box: np.ndarray, others: np.ndarray,
               box_tol: float) -> Tuple[np.ndarray, np.ndarray]:
    """Lower and upper bound of IoU(box, others[i]) when every coordinate of
    every box may move by ``box_tol``."""
    grow = np.array([-box_tol, -box_tol, box_tol, box_tol])
    bs, ks = box - grow, others - grow  # shrunk
    bg, kg = box + grow, others + grow  # grown
    inter_lo, inter_hi = _inter(bs, ks), _inter(bg, kg)
    union_hi = _area(bg) + _area(kg) - inter_lo
    union_lo = _area(bs) + _area(ks) - inter_hi
    lo = np.where(union_hi > 0, inter_lo / np.maximum(union_hi, 1e-12), 0.)
    hi = np.where(union_lo > 0, inter_hi / np.maximum(union_lo, 1e-12), 1.)
    return lo, np.minimum(hi, 1.)


class _Kept:
    """Kept entries of one class: each is one box or a group of
    alternative boxes (exactly one of which survives), present in every
    case or only in some."""

    def __init__(self):
        self.alts = np.zeros((0, 4))
        self.owner = np.zeros(0, dtype=np.int64)
        self.present, self.first = [], []

    def add(self, boxes, score, present):
        self.owner = np.append(self.owner, [len(self.present)] * len(boxes))
        self.alts = np.concatenate([self.alts, boxes])
        self.present.append(present)
        self.first.append((boxes[0], score, len(boxes)))

    def status(self, box, iou_thr, box_tol):
        """Per entry: 1 if, when present, it surely suppresses ``box``; 0 if
        surely not; -1 if the box error decides."""
        n = len(self.present)
        if not n:
            return np.zeros(0, dtype=np.int64)
        lo, hi = iou_bounds(box, self.alts, box_tol)
        sure = np.ones(n, bool)
        np.logical_and.at(sure, self.owner, lo > iou_thr)
        free = np.ones(n, bool)
        np.logical_and.at(free, self.owner, hi <= iou_thr)
        return np.where(sure, 1, np.where(free, 0, -1))


def determined_kept(boxes, scores, score_thr: float, iou_thr: float,
                    score_tol: float, box_tol: float,
                    max_per_class: Optional[int] = None,
                    stop: float = -np.inf) -> Dict[int, np.ndarray]:
    """Per class, the boxes and scores (K, 5) that class-wise greedy NMS
    keeps, as one box, for any raw outputs within ``score_tol`` /
    ``box_tol`` of these (``boxes`` (N, 4), ``scores`` (N, C)). Candidates
    scored below ``stop`` are not visited (they lie below the
    ``max_per_img`` cut).

    Two candidates of a class *interact* when their scores are within
    ``2 * score_tol`` (their order is open) and their IoU may exceed
    ``iou_thr``; connected candidates form a group, visited at its highest
    score (a group spanning more than ``2 * score_tol`` leaves the rest of
    the class undetermined). Against the entries kept above it, a candidate
    is surely suppressed (by an entry present in every case, all of whose
    alternatives overlap it beyond ``iou_thr`` under any box error), surely
    free (no entry can overlap it beyond ``iou_thr``) or undecided. The
    members of a group that are not surely suppressed must all overlap each
    other beyond ``iou_thr`` under any box error (then exactly one
    survives: one entry with those alternatives); otherwise the rest of the
    class is undetermined. An entry is present in every case when its
    members were surely free and clear of the score threshold.
    """
    boxes = _np(boxes).astype(np.float64)
    scores = _np(scores).astype(np.float64)
    out = {}
    for c in range(scores.shape[1]):
        idx = np.flatnonzero(scores[:, c] > max(score_thr - score_tol, stop))
        s = scores[idx, c]
        order = np.argsort(-s, kind='stable')
        b, s = boxes[idx[order]], s[order]
        # groups of interacting candidates (union-find)
        parent = np.arange(len(s))

        def root(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        start = 0
        for j in range(len(s)):
            while s[start] - s[j] > 2 * score_tol:
                start += 1
            if start < j:
                hi = iou_bounds(b[j], b[start:j], box_tol)[1]
                for i in np.flatnonzero(hi > iou_thr) + start:
                    parent[root(i)] = root(j)
        roots = np.array([root(i) for i in range(len(s))], dtype=np.int64)
        kept, done = _Kept(), set()
        for j in range(len(s)):
            r = roots[j]
            if r in done:
                continue
            done.add(r)
            group = np.flatnonzero(roots == r)
            if s[group[0]] - s[group[-1]] > 2 * score_tol or (
                    max_per_class is not None
                    and len(kept.present) >= max_per_class):
                break  # the rest of the class is undetermined
            present = np.array(kept.present, bool)
            members, free = [], True
            for m in group:
                st = kept.status(b[m], iou_thr, box_tol)
                if ((st == 1) & present).any():
                    continue  # suppressed in every case
                members.append(m)
                free &= bool((st == 0).all()) and (
                    s[m] > score_thr + score_tol)
            if len(members) > 1:
                if not all((iou_bounds(b[m], b[[o for o in members
                                                   if o != m]],
                                      box_tol)[0] > iou_thr).all()
                           for m in members):
                    break  # which survive depends on the order
            if members:
                kept.add(b[members], s[members[0]], free)
        out[c] = np.array(
            [np.append(box, score)
             for (box, score, n), p in zip(kept.first, kept.present)
             if p and n == 1]).reshape(-1, 5)
    return out


def determined(dets: Dets, kept: Dict[int, np.ndarray], cut: float,
               score_tol: float, box_tol: float) -> np.ndarray:
    """Boolean mask: the detections that are a determined kept box of their
    class (within ``box_tol`` / ``score_tol``) scored above the
    ``max_per_img`` cut."""
    mask = dets['scores'] > cut + 2 * score_tol
    for i in np.flatnonzero(mask):
        k = kept.get(int(dets['labels'][i]), np.zeros((0, 5)))
        mask[i] = bool(((np.abs(k[:, :4] - dets['bboxes'][i]).max(1) <=
                         box_tol) & (np.abs(k[:, 4] - dets['scores'][i]) <=
                                     score_tol)).any())
    return mask


def match(a: Dets, b: Dets, box_tol: float, score_tol: float,
          subset: Optional[np.ndarray] = None):
    """:func:`damoyolo_mm.deploy.match_detections` (one-to-one, highest
    scores first, same label, box and score within the tolerances) of the
    detections of ``a`` in ``subset`` against all of ``b``. Returns the
    unmatched indices of ``a`` and the largest box / score difference of
    the pairs."""
    from damoyolo_mm.deploy import match_detections
    idx = np.arange(len(a['scores'])) if subset is None else \
        np.flatnonzero(subset)
    un, _, max_db, max_ds = match_detections(
        {k: v[idx] for k, v in a.items()}, b, box_tol, score_tol)
    return sorted(int(idx[i]) for i in un), max_db, max_ds


def compare_detections(a, b, raws: Sequence[Tuple], test_cfg, score_tol:
                       float, box_tol: float,
                       max_per_class: Optional[int] = None) -> dict:
    """Compare detection sets ``a`` and ``b`` (in the frame of the raw
    outputs). ``raws``: the raw outputs ``(boxes (N, 4), scores (N, C))``
    of both sides, or of one side when the other's are not at hand;
    ``score_tol`` / ``box_tol`` bound the difference of the two sides'
    raw outputs (with both at hand, their measured difference is used when
    smaller) and are the matching tolerances. ``test_cfg``: the head's
    test_cfg (``score_thr``, ``nms.iou_threshold``, ``max_per_img``).

    Returns a dict: ``unmatched_a`` / ``unmatched_b`` (indices of determined
    detections without a partner on the other side, and of ``foreign_a`` /
    ``foreign_b``: detections that are no raw output), ``determined_a`` /
    ``determined_b`` (fractions), ``max_box_diff`` / ``max_score_diff`` over
    the matched pairs, and the tolerances the NMS was judged with."""
    a, b = as_dets(a), as_dets(b)
    score_thr = float(test_cfg.get('score_thr', 0.))
    iou_thr = float(test_cfg['nms']['iou_threshold'])
    max_per_img = int(test_cfg.get('max_per_img', -1))
    f_score_tol, f_box_tol = score_tol, box_tol
    if len(raws) == 2:
        # the measured difference bounds it (+ the IoU arithmetic's rounding)
        (b1, s1), (b2, s2) = [(_np(x).astype(np.float64),
                               _np(y).astype(np.float64)) for x, y in raws]
        f_score_tol = min(score_tol, float(np.abs(s1 - s2).max()))
        f_box_tol = min(box_tol, float(np.abs(b1 - b2).max()) + IOU_EPS)
    # the max_per_img cut of each side is its lowest score when it is full
    cuts = [float(d['scores'].min()) for d in (a, b)
            if 0 < max_per_img <= len(d['scores'])]
    cut = max(cuts) if cuts else -np.inf
    det_a = det_b = None
    foreign_a = foreign_b = None
    for boxes, scores in raws:
        kept = determined_kept(boxes, scores, score_thr, iou_thr,
                               f_score_tol, f_box_tol, max_per_class,
                               stop=cut - 2 * f_score_tol)
        # a detection of either side is within the tolerances of a raw box
        ma = determined(a, kept, cut, f_score_tol, box_tol)
        mb = determined(b, kept, cut, f_score_tol, box_tol)
        det_a = ma if det_a is None else det_a & ma
        det_b = mb if det_b is None else det_b & mb
        fa = ~is_candidate(a, boxes, scores, score_tol, box_tol)
        fb = ~is_candidate(b, boxes, scores, score_tol, box_tol)
        foreign_a = fa if foreign_a is None else foreign_a & fa
        foreign_b = fb if foreign_b is None else foreign_b & fb
    un_a, db_a, ds_a = match(a, b, box_tol, score_tol, det_a)
    un_b, db_b, ds_b = match(b, a, box_tol, score_tol, det_b)
    frac = lambda m: float(m.mean()) if len(m) else 1.  # noqa: E731
    return dict(unmatched_a=sorted(un_a + np.flatnonzero(foreign_a).tolist()),
                unmatched_b=sorted(un_b + np.flatnonzero(foreign_b).tolist()),
                foreign_a=np.flatnonzero(foreign_a).tolist(),
                foreign_b=np.flatnonzero(foreign_b).tolist(),
                determined_a=frac(det_a), determined_b=frac(det_b),
                max_box_diff=max(db_a, db_b), max_score_diff=max(ds_a, ds_b),
                num_a=len(a['scores']), num_b=len(b['scores']),
                judged_score_tol=f_score_tol, judged_box_tol=f_box_tol)


def is_candidate(dets: Dets, boxes, scores, score_tol: float,
                 box_tol: float) -> np.ndarray:
    """Boolean mask: the detections that are a raw output (a prior's box and
    its score of the detection's class, within the tolerances)."""
    boxes = _np(boxes).astype(np.float64)
    scores = _np(scores).astype(np.float64)
    out = np.zeros(len(dets['scores']), dtype=bool)
    for i in range(len(out)):
        near = np.abs(boxes - dets['bboxes'][i]).max(1) <= box_tol
        out[i] = bool((np.abs(scores[near, dets['labels'][i]] -
                              dets['scores'][i]) <= score_tol).any())
    return out


def assert_same_detections(a, b, raws, test_cfg, score_tol: float,
                           box_tol: float, min_determined: float,
                           max_per_class: Optional[int] = None,
                           name: str = 'detections') -> dict:
    """:func:`compare_detections`, asserting that every determined detection
    of either side has a partner on the other and that at least
    ``min_determined`` of each side is determined (so that the comparison
    keeps its strength; recorded as ``'<name>: determined share'``, see
    ``tests/numerics.py``)."""
    r = compare_detections(a, b, raws, test_cfg, score_tol, box_tol,
                           max_per_class)
    assert not r['unmatched_a'] and not r['unmatched_b'], (
        f"{name}: determined detections without a partner: "
        f"{r['unmatched_a'][:10]} of a, {r['unmatched_b'][:10]} of b ({r})")
    at_least(f'{name}: determined share',
             min(r['determined_a'], r['determined_b']), min_determined,
             str(r))
    return r
