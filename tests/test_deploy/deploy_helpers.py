"""Helpers shared by the deployment tests (plain functions, no fixtures)."""
import importlib.util
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: golden variant -> (model config, ONNX Runtime static deploy config)
VARIANTS = {
    'Ns': ('configs/damoyolo_ns_coco.py',
           'configs/deploy/detection_onnxruntime_static-416x416_nano.py'),
    'T': ('configs/damoyolo_t_coco.py',
          'configs/deploy/detection_onnxruntime_static-640x640.py'),
}


def gpu_missing() -> Optional[str]:
    """Why TensorRT engines cannot be built here, or None."""
    missing = []
    if importlib.util.find_spec('tensorrt') is None:
        missing.append('the tensorrt package (pip install "tensorrt>=10,<11")')
    if not torch.cuda.is_available():
        missing.append('an NVIDIA GPU with CUDA (torch.cuda.is_available() '
                       f'is False for torch {torch.__version__})')
    return ' and '.join(missing) or None


def build_fused_model(variant: str, golden_dir: str):
    """Our detector with the golden weights (converted), in deploy form."""
    from mmdet.registry import MODELS
    from mmengine.config import Config

    from damoyolo_mm.converters import convert_official_state_dict
    cfg = Config.fromfile(osp.join(REPO, VARIANTS[variant][0]))
    model = MODELS.build(cfg.model)
    ckpt = torch.load(
        osp.join(golden_dir, f'{variant}_ckpt_fp16.pth'),
        map_location='cpu',
        weights_only=True)
    model.load_state_dict(
        convert_official_state_dict(ckpt['model'], model.state_dict()))
    model.eval()
    model.switch_to_deploy()
    return model.eval(), cfg


def add_nms_inputs_as_outputs(onnx_file: str, out_file: str) -> List[str]:
    """Copy an end-to-end ONNX with the inputs of its NonMaxSuppression node
    (boxes [B, N, 4], scores [B, C, N]) added as graph outputs."""
    from damoyolo_mm.deploy.quantization import with_nms_inputs
    return list(with_nms_inputs(onnx_file, out_file))


def reference_nms(boxes: np.ndarray, scores: np.ndarray, score_thr: float,
                  iou_thr: float, max_per_img: int,
                  max_per_class: Optional[int] = None) -> Dict[str, np.ndarray]:
    """Class-wise greedy NMS with a deterministic tie rule.

    (prior, class) pairs with score > score_thr are candidates; per class
    they are visited by descending score, equal scores by ascending prior
    index (the rule of ONNX Runtime's NonMaxSuppression); a candidate whose
    IoU with a kept box of its class is > iou_thr is dropped. Survivors are
    sorted by score (stable) and capped at max_per_img.

    Args:
        boxes: (N, 4) x1y1x2y2.  scores: (N, C) probabilities.
    """
    boxes = boxes.astype(np.float32)
    scores = scores.astype(np.float32)
    prior_inds, labels = np.nonzero(scores > score_thr)
    kept_b, kept_s, kept_l = [], [], []
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for c in np.unique(labels):
        idx = prior_inds[labels == c]
        s = scores[idx, c]
        order = np.lexsort((idx, -s))
        idx, s = idx[order], s[order]
        b, a = boxes[idx], areas[idx]
        suppressed = np.zeros(len(idx), dtype=bool)
        keep = []
        for i in range(len(idx)):
            if suppressed[i]:
                continue
            keep.append(i)
            if max_per_class is not None and len(keep) >= max_per_class:
                break
            rest = slice(i + 1, None)
            iw = np.minimum(b[i, 2], b[rest, 2]) - np.maximum(b[i, 0],
                                                              b[rest, 0])
            ih = np.minimum(b[i, 3], b[rest, 3]) - np.maximum(b[i, 1],
                                                              b[rest, 1])
            inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
            union = a[i] + a[rest] - inter
            iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0)
            suppressed[rest] |= iou > iou_thr
        kept_b.append(b[keep])
        kept_s.append(s[keep])
        kept_l.append(np.full(len(keep), c))
    if not kept_s:
        return dict(bboxes=np.zeros((0, 4), np.float32),
                    scores=np.zeros((0, ), np.float32),
                    labels=np.zeros((0, ), np.int64))
    b, s, l = (np.concatenate(kept_b), np.concatenate(kept_s),
               np.concatenate(kept_l))
    order = np.argsort(-s, kind='stable')[:max_per_img]
    return dict(bboxes=b[order], scores=s[order], labels=l[order])


def match_detections(a, b, box_tol, score_tol):
    """See :func:`damoyolo_mm.deploy.match_detections`."""
    from damoyolo_mm.deploy.export import match_detections as _match
    return _match(a, b, box_tol, score_tol)
