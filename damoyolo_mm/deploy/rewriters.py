"""MMDeploy function rewriters for DAMO-YOLO.

MMDeploy's ``SingleStageDetector.forward`` rewriter already turns the
detector into ``extract_feat`` + ``bbox_head.predict(rescale=False)``;
:class:`~damoyolo_mm.models.dense_heads.ZeroHead` overrides
``predict_by_feat`` (per-image Python post-processing), so MMDeploy's
``BaseDenseHead.predict_by_feat`` rewriter does not reach it. The rewriter
here makes the graph end to end: flat decoded boxes ``[B, N, 4]`` and class
probabilities ``[B, N, C]`` (``ZeroHead.decode_outputs``, the same code as
eager inference) go into MMDeploy's ``multiclass_nms`` (``onnx::
NonMaxSuppression`` for ONNX Runtime), giving ``dets [B, K, 5]`` and
``labels [B, K]``.

Thresholds: the head's ``test_cfg`` (``score_thr``, ``nms.iou_threshold``,
``max_per_img``) as MMDeploy does for mmdet heads; the deploy config's
``post_processing`` gives ``max_output_boxes_per_class`` and ``pre_top_k``
and must agree with test_cfg (checked by
:func:`damoyolo_mm.deploy.export.check_post_processing`).
"""
from typing import List, Optional

from mmdeploy.codebase.mmdet.deploy import get_post_processing_params
from mmdeploy.core import FUNCTION_REWRITER
from mmdeploy.mmcv.ops import multiclass_nms
from mmengine.config import ConfigDict
from torch import Tensor


@FUNCTION_REWRITER.register_rewriter(
    func_name='damoyolo_mm.models.dense_heads.zero_head.ZeroHead.'
    'predict_by_feat')
def zero_head__predict_by_feat(self,
                               cls_scores: List[Tensor],
                               bbox_preds: List[Tensor],
                               score_factors: Optional[List[Tensor]] = None,
                               batch_img_metas: Optional[List[dict]] = None,
                               cfg: Optional[ConfigDict] = None,
                               rescale: bool = False,
                               with_nms: bool = True,
                               **kwargs):
    """Batched decode + multiclass NMS of ``ZeroHead`` for export.

    Returns:
        tuple[Tensor, Tensor]: ``dets`` (B, K, 5) x1y1x2y2 + score in the
        network-input frame and ``labels`` (B, K); without NMS the flat
        ``(boxes (B, N, 4), scores (B, N, C))``.
    """
    ctx = FUNCTION_REWRITER.get_context()
    scores, bboxes = self.decode_outputs(cls_scores, bbox_preds)
    if not with_nms:
        return bboxes, scores
    cfg = self.test_cfg if cfg is None else cfg
    post_params = get_post_processing_params(ctx.cfg)
    nms_cfg = cfg.get('nms', {}) or {}
    iou_threshold = nms_cfg.get('iou_threshold', post_params.iou_threshold)
    score_threshold = cfg.get('score_thr', post_params.score_threshold)
    keep_top_k = cfg.get('max_per_img', post_params.keep_top_k)
    return multiclass_nms(
        bboxes,
        scores,
        post_params.max_output_boxes_per_class,
        nms_type=nms_cfg.get('type', 'nms'),
        iou_threshold=iou_threshold,
        score_threshold=score_threshold,
        pre_top_k=post_params.pre_top_k,
        keep_top_k=keep_top_k)
