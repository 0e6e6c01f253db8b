"""AlignOTA label assignment of DAMO-YOLO, vectorised over the batch."""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.task_modules.assigners.assign_result import AssignResult
from mmdet.models.task_modules.assigners.base_assigner import BaseAssigner
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData
from torch import Tensor


def pairwise_iou(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-6) -> Tensor:
    """IoU between every box of ``boxes1`` and every box of ``boxes2``.

    Batched: ``boxes1`` (..., N, 4) and ``boxes2`` (..., G, 4) in x1y1x2y2
    give (..., N, G). The union is clamped from below by ``eps`` (the
    convention of mmdet's ``bbox_overlaps``), no +1 pixel convention.
    """
    area1 = (boxes1[..., 2] - boxes1[..., 0]) * (
        boxes1[..., 3] - boxes1[..., 1])
    area2 = (boxes2[..., 2] - boxes2[..., 0]) * (
        boxes2[..., 3] - boxes2[..., 1])
    lt = torch.max(boxes1[..., :, None, :2], boxes2[..., None, :, :2])
    rb = torch.min(boxes1[..., :, None, 2:], boxes2[..., None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    union = area1[..., None] + area2[..., None, :] - overlap
    union = torch.max(union, union.new_tensor([eps]))
    return overlap / union


@TASK_UTILS.register_module()
class AlignOTAAssigner(BaseAssigner):
    """Dynamic-k optimal-transport style assignment used by DAMO-YOLO.

    For every image, a prior is a *candidate* when its point lies strictly
    inside any GT box or strictly inside the square of half-size
    ``center_radius * stride`` around any GT centre. The cost of pairing a
    candidate with a GT is

    ``cls_weight * sum_c BCE(p_c, t_c) * |t_c - p_c|^2
    + iou_weight * -log(IoU + iou_eps)
    + inf_cost * [not (in box and in centre)]``

    where ``p`` are the predicted class probabilities and ``t`` the one-hot
    GT label scaled by the IoU of the decoded box with the GT. Every GT takes
    its ``k`` cheapest candidates, ``k = max(1, int(sum of its topk largest
    candidate IoUs))``; a prior claimed by several GTs keeps the cheapest GT.

    The computation runs on one padded batch tensor: costs are (B, N, G)
    with invalid priors / padded GTs at ``+inf``. Among priors with exactly
    equal cost the lower prior index is taken first. Equal costs arise for
    priors outside the centre region of a GT, whose fp32 cost is rounded to
    a multiple of 8 by ``inf_cost``; they are only taken when a GT has fewer
    in-box-and-centre priors than its dynamic k (tiny GTs), and the reference
    per-GT top-k leaves their order to its sort implementation, so only that
    case may pick a different prior than the reference.

    Args:
        center_radius (float): Half-size of the centre region in strides.
        topk (int): Number of largest IoUs summed to get the dynamic k.
        cls_weight (float): Weight of the classification cost.
        iou_weight (float): Weight of the IoU cost.
        iou_eps (float): Added to the IoU inside the log of the IoU cost.
        inf_cost (float): Cost added to pairs that are not both inside the GT
            box and inside its centre region.
    """

    def __init__(self,
                 center_radius: float = 2.5,
                 topk: int = 10,
                 cls_weight: float = 1.0,
                 iou_weight: float = 3.0,
                 iou_eps: float = 1e-7,
                 inf_cost: float = 1e8) -> None:
        if topk < 1:
            raise ValueError(
                f'AlignOTAAssigner: topk must be >= 1, got {topk}')
        if center_radius <= 0:
            raise ValueError('AlignOTAAssigner: center_radius must be > 0, '
                             f'got {center_radius}')
        self.center_radius = center_radius
        self.topk = topk
        self.cls_weight = cls_weight
        self.iou_weight = iou_weight
        self.iou_eps = iou_eps
        self.inf_cost = inf_cost

    # ------------------------------------------------------------------
    # batched core
    # ------------------------------------------------------------------
    def _candidate_masks(self, priors: Tensor, gt_bboxes: Tensor,
                         gt_valid: Tensor) -> Tuple[Tensor, Tensor]:
        """Return (B, N) candidate mask and (B, N, G) in-box-and-centre."""
        px = priors[..., 0, None]
        py = priors[..., 1, None]
        sx = priors[..., 2, None]
        sy = priors[..., 3, None]
        x1 = gt_bboxes[:, None, :, 0]
        y1 = gt_bboxes[:, None, :, 1]
        x2 = gt_bboxes[:, None, :, 2]
        y2 = gt_bboxes[:, None, :, 3]
        valid = gt_valid[:, None, :]
        in_box = ((px - x1 > 0) & (py - y1 > 0) & (x2 - px > 0)
                  & (y2 - py > 0) & valid)
        cx = (x1 + x2) / 2.0
        cy = (y1 + y2) / 2.0
        in_ctr = ((px - (cx - self.center_radius * sx) > 0)
                  & (py - (cy - self.center_radius * sy) > 0)
                  & ((cx + self.center_radius * sx) - px > 0)
                  & ((cy + self.center_radius * sy) - py > 0) & valid)
        candidate = (in_box | in_ctr).any(dim=-1)
        return candidate, in_box & in_ctr

    def _cls_cost(self, pred_scores: Tensor, gt_labels: Tensor,
                  ious: Tensor) -> Tensor:
        """Quality-focal classification cost, (B, N, G).

        The target of pair (n, g) is zero for every class but the GT label,
        where it is the IoU. The sum over classes is therefore the all-zero
        target cost of the prior, minus its term at the GT label, plus the
        term with the IoU target, which needs no (B, N, G, C) tensor.
        """
        num_priors = pred_scores.size(1)
        neg_terms = F.binary_cross_entropy(
            pred_scores, torch.zeros_like(pred_scores),
            reduction='none') * pred_scores.abs().pow(2.0)
        index = gt_labels[:, None, :].expand(-1, num_priors, -1)
        score_at_label = pred_scores.gather(2, index)
        neg_at_label = neg_terms.gather(2, index)
        pos_terms = F.binary_cross_entropy(
            score_at_label, ious,
            reduction='none') * (ious - score_at_label).abs().pow(2.0)
        return neg_terms.sum(dim=-1, keepdim=True) - neg_at_label + pos_terms

    @torch.no_grad()
    def batch_assign(self, pred_scores: Tensor, priors: Tensor,
                     decoded_bboxes: Tensor, gt_bboxes: Tensor,
                     gt_labels: Tensor, gt_valid: Tensor) -> Dict[str, Tensor]:
        """Assign a whole padded batch at once.

        Args:
            pred_scores (Tensor): (B, N, C) class probabilities (sigmoid
                already applied).
            priors (Tensor): (N, 4) or (B, N, 4) priors as
                (x, y, stride_w, stride_h).
            decoded_bboxes (Tensor): (B, N, 4) predicted boxes, x1y1x2y2.
            gt_bboxes (Tensor): (B, G, 4) GT boxes padded to the largest G.
            gt_labels (Tensor): (B, G) 0-based GT labels (any value where
                padded).
            gt_valid (Tensor): (B, G) bool, False for padding.

        Returns:
            dict with (B, N) tensors: ``fg_mask`` (bool), ``gt_inds`` (long,
            0-based index of the matched GT, -1 for background), ``labels``
            (long, -1 for background) and ``ious`` (IoU of the decoded box
            with its matched GT, 0 for background).
        """
        if pred_scores.dim() != 3:
            raise ValueError('AlignOTAAssigner.batch_assign: pred_scores must '
                             'be (B, N, C), got shape '
                             f'{tuple(pred_scores.shape)}')
        num_imgs, num_priors, num_classes = pred_scores.shape
        if priors.dim() == 2:
            priors = priors[None].expand(num_imgs, -1, -1)
        if priors.shape != (num_imgs, num_priors, 4):
            raise ValueError('AlignOTAAssigner.batch_assign: priors must be '
                             f'({num_priors}, 4) or ({num_imgs}, {num_priors}'
                             f', 4), got {tuple(priors.shape)}')
        if decoded_bboxes.shape != (num_imgs, num_priors, 4):
            raise ValueError('AlignOTAAssigner.batch_assign: decoded_bboxes '
                             f'must be ({num_imgs}, {num_priors}, 4), got '
                             f'{tuple(decoded_bboxes.shape)}')
        num_gts = gt_bboxes.size(1)
        if (gt_bboxes.dim() != 3 or gt_bboxes.size(0) != num_imgs
                or gt_bboxes.size(2) != 4):
            raise ValueError('AlignOTAAssigner.batch_assign: gt_bboxes must '
                             f'be ({num_imgs}, G, 4), got '
                             f'{tuple(gt_bboxes.shape)}')
        if gt_labels.shape != (num_imgs, num_gts) or gt_valid.shape != (
                num_imgs, num_gts):
            raise ValueError(
                'AlignOTAAssigner.batch_assign: gt_labels and gt_valid must '
                f'be ({num_imgs}, {num_gts}), got {tuple(gt_labels.shape)} '
                f'and {tuple(gt_valid.shape)}')
        gt_labels = gt_labels.long()
        gt_valid = gt_valid.bool()
        if gt_valid.any():
            bad = gt_labels[gt_valid]
            if bad.min() < 0 or bad.max() >= num_classes:
                raise ValueError(
                    'AlignOTAAssigner.batch_assign: GT labels must lie in '
                    f'[0, {num_classes}), got values in '
                    f'[{int(bad.min())}, {int(bad.max())}]')
        # padded labels must still be valid gather indices
        gt_labels = gt_labels.masked_fill(~gt_valid, 0)

        device = pred_scores.device
        fg_mask = torch.zeros((num_imgs, num_priors),
                              dtype=torch.bool,
                              device=device)
        result = dict(
            fg_mask=fg_mask,
            gt_inds=torch.full((num_imgs, num_priors),
                               -1,
                               dtype=torch.long,
                               device=device),
            labels=torch.full((num_imgs, num_priors),
                              -1,
                              dtype=torch.long,
                              device=device),
            ious=decoded_bboxes.new_zeros((num_imgs, num_priors),
                                          dtype=torch.float32))
        if num_gts == 0 or num_priors == 0:
            return result

        with torch.autocast(device_type=device.type, enabled=False):
            return self._batch_assign_fp32(
                pred_scores.detach().float(), priors.float(),
                decoded_bboxes.detach().float(), gt_bboxes.float(),
                gt_labels, gt_valid, result)

    def _batch_assign_fp32(self, pred_scores: Tensor, priors: Tensor,
                           decoded_bboxes: Tensor, gt_bboxes: Tensor,
                           gt_labels: Tensor, gt_valid: Tensor,
                           result: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Body of :meth:`batch_assign` (fp32, autocast off)."""
        num_priors = pred_scores.size(1)
        candidate, in_both = self._candidate_masks(priors, gt_bboxes,
                                                   gt_valid)
        pair_ok = candidate[:, :, None] & gt_valid[:, None, :]

        ious = pairwise_iou(decoded_bboxes, gt_bboxes)
        iou_cost = -torch.log(ious + self.iou_eps)
        cls_cost = self._cls_cost(pred_scores, gt_labels, ious)
        cost = (cls_cost * self.cls_weight + iou_cost * self.iou_weight +
                (~in_both).to(cls_cost.dtype) * self.inf_cost)
        cost = cost.masked_fill(~pair_ok, float('inf'))

        # dynamic k per GT from the largest candidate IoUs
        cand_ious = ious.masked_fill(~pair_ok, 0.)
        k_iou = min(self.topk, num_priors)
        topk_ious = cand_ious.topk(k_iou, dim=1).values
        dynamic_k = topk_ious.sum(dim=1).int().clamp(min=1)
        has_candidates = candidate.any(dim=1, keepdim=True)
        dynamic_k = torch.where(gt_valid & has_candidates, dynamic_k,
                                torch.zeros_like(dynamic_k)).long()

        # each GT takes its dynamic_k cheapest candidates; among equal costs
        # the lower prior index first
        max_k = int(dynamic_k.max())
        if max_k == 0:
            return result
        cost_t = cost.transpose(1, 2)  # (B, G, N)
        sorted_costs = cost_t.topk(
            min(max_k, num_priors), dim=2, largest=False).values
        kth = sorted_costs.gather(2, (dynamic_k - 1).clamp(min=0)[..., None])
        below = cost_t < kth
        at_kth = cost_t == kth
        remaining = dynamic_k - below.sum(dim=2)
        take_at_kth = at_kth & (at_kth.cumsum(dim=2) <= remaining[..., None])
        matching = (below | take_at_kth) & (dynamic_k > 0)[..., None]
        matching = matching.transpose(1, 2)  # (B, N, G)

        # a prior claimed by several GTs keeps the cheapest one
        num_matched = matching.sum(dim=2)
        cheapest = cost.argmin(dim=2)
        first_match = matching.to(torch.uint8).argmax(dim=2)
        matched_gt = torch.where(num_matched > 1, cheapest, first_match)
        fg_mask = num_matched > 0

        matched_ious = ious.gather(2, matched_gt[..., None])[..., 0]
        matched_labels = gt_labels.gather(1, matched_gt)
        result['fg_mask'] = fg_mask
        result['gt_inds'] = torch.where(fg_mask, matched_gt,
                                        torch.full_like(matched_gt, -1))
        result['labels'] = torch.where(fg_mask, matched_labels,
                                       torch.full_like(matched_labels, -1))
        result['ious'] = torch.where(fg_mask, matched_ious,
                                     torch.zeros_like(matched_ious))
        return result

    # ------------------------------------------------------------------
    # mmdet single-image interface
    # ------------------------------------------------------------------
    def assign(self,
               pred_instances: InstanceData,
               gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None,
               **kwargs) -> AssignResult:
        """Assign GTs to the priors of one image (mmdet interface).

        Args:
            pred_instances (InstanceData): ``priors`` (N, 4) as (x, y,
                stride_w, stride_h), ``bboxes`` (N, 4) decoded x1y1x2y2 and
                ``scores`` (N, C) class probabilities.
            gt_instances (InstanceData): ``bboxes`` (G, 4) and ``labels`` (G,).
            gt_instances_ignore (InstanceData, optional): not used; crowd /
                ignored regions take no part in the assignment.

        Returns:
            AssignResult: ``gt_inds`` 1-based (0 = background),
            ``max_overlaps`` IoU of the matched pair (0 for background) and
            ``labels`` (-1 for background).
        """
        for key in ('priors', 'bboxes', 'scores'):
            if key not in pred_instances:
                raise KeyError(
                    f'AlignOTAAssigner.assign: pred_instances needs "{key}", '
                    f'has {list(pred_instances.keys())}')
        for key in ('bboxes', 'labels'):
            if key not in gt_instances:
                raise KeyError(f'AlignOTAAssigner.assign: gt_instances needs '
                               f'"{key}", has {list(gt_instances.keys())}')
        gt_bboxes = gt_instances.bboxes
        if hasattr(gt_bboxes, 'tensor'):  # mmdet box structures
            gt_bboxes = gt_bboxes.tensor
        gt_labels = gt_instances.labels
        num_gts = gt_bboxes.size(0)
        out = self.batch_assign(
            pred_instances.scores[None], pred_instances.priors,
            pred_instances.bboxes[None], gt_bboxes.reshape(1, num_gts, 4),
            gt_labels.reshape(1, num_gts),
            torch.ones((1, num_gts),
                       dtype=torch.bool,
                       device=gt_labels.device))
        gt_inds = out['gt_inds'][0] + 1
        return AssignResult(
            num_gts, gt_inds, out['ious'][0], labels=out['labels'][0])
