"""Distillation of the head's predictions (dense soft targets).

The teacher's head runs on the same batch as the student's; at every prior
its class probabilities and its box-side distributions become soft targets
for the student:

* classes: mmdet's ``QualityFocalLoss`` with a tensor target (the teacher's
  sigmoid scores, the soft-label form of QFL), summed over all priors and
  classes and divided by the teacher's soft object count, the sum over
  priors of its largest class probability: the same normalisation as the
  detection QFL's (number of positives), with the teacher's
  confidence in place of the assignment;
* boxes: mmdet's ``KnowledgeDistillationKLDivLoss`` (Localization
  Distillation: KL between the temperature-softened bin distributions of
  each box side), weighted per prior by the teacher's largest class
  probability and averaged over four times their sum (one term per side),
  as the detection DFL is weighted by the student's scores.

Both read the outputs of :meth:`ZeroHead.forward` (per level, class logits
(B, C, H, W) and bin logits (B, 4 * (reg_max + 1), H, W)); student and
teacher must have the same levels, classes and ``reg_max``.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from torch import Tensor

from ..dense_heads.zero_head import global_avg_factor

HeadOutputs = Tuple[Sequence[Tensor], Sequence[Tensor]]


def _flat_outputs(outs: HeadOutputs, who: str) -> Tuple[Tensor, Tensor]:
    """(cls logits (B*N, C), bin logits (B*N, 4, R + 1)) over all levels."""
    cls_scores, bbox_preds = outs
    cls_flat, box_flat = [], []
    for cls_score, bbox_pred in zip(cls_scores, bbox_preds):
        num_imgs, channels, h, w = bbox_pred.shape
        if channels % 4:
            raise ValueError(f'HeadDistillLoss: the {who} box map has '
                             f'{channels} channels, expected 4 * (reg_max + 1)')
        box_flat.append(
            bbox_pred.float().reshape(num_imgs, 4, channels // 4,
                                      h * w).permute(0, 3, 1, 2).reshape(
                                          -1, 4, channels // 4))
        cls_flat.append(cls_score.float().flatten(2).transpose(1, 2).reshape(
            -1, cls_score.shape[1]))
    return torch.cat(cls_flat), torch.cat(box_flat)


@MODELS.register_module()
class HeadDistillLoss(nn.Module):
    """Soft-target distillation of class scores and box distributions.

    Args:
        loss_cls (dict): Class-score loss, called as ``loss(student_logits,
            teacher_probs, avg_factor=...)`` on (B*N, C). Defaults to mmdet's
            soft-target QFL (beta 2).
        loss_box (dict, optional): Box-distribution loss, called as
            ``loss(student_bins, teacher_bins, weight=..., avg_factor=...)``
            on (B*N*4, R + 1) logits. Defaults to mmdet's
            ``KnowledgeDistillationKLDivLoss`` with the settings of mmdet's
            Localization Distillation configs (T 10, weight 0.25). None: the
            class scores only (student and teacher may then have different
            ``reg_max``).
    """

    def __init__(self,
                 loss_cls: dict = dict(
                     type='QualityFocalLoss', use_sigmoid=True, beta=2.0,
                     loss_weight=1.0),
                 loss_box: Optional[dict] = dict(
                     type='KnowledgeDistillationKLDivLoss', T=10,
                     loss_weight=0.25)) -> None:
        super().__init__()
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_box = None if loss_box is None else MODELS.build(loss_box)

    def forward(self, student_outs: HeadOutputs,
                teacher_outs: HeadOutputs) -> Dict[str, Tensor]:
        """``loss_distill_cls`` (and ``loss_distill_box``) for one batch."""
        s_shapes = [tuple(c.shape) for c in student_outs[0]]
        t_shapes = [tuple(c.shape) for c in teacher_outs[0]]
        if s_shapes != t_shapes:
            raise ValueError(
                'HeadDistillLoss: student and teacher heads must predict the '
                'same classes at the same priors, but their class maps are '
                f'{s_shapes} (student) and {t_shapes} (teacher)')
        s_cls, s_box = _flat_outputs(student_outs, 'student')
        with torch.no_grad():
            t_cls, t_box = _flat_outputs(teacher_outs, 'teacher')
            t_prob = t_cls.sigmoid()
            weight = t_prob.max(dim=1)[0]
            norm = global_avg_factor(weight.sum())
        with torch.autocast(device_type=s_cls.device.type, enabled=False):
            losses = dict(loss_distill_cls=self.loss_cls(
                s_cls, t_prob, avg_factor=norm))
            if self.loss_box is not None:
                if s_box.shape[-1] != t_box.shape[-1]:
                    raise ValueError(
                        'HeadDistillLoss: the box distributions of student '
                        f'(reg_max {s_box.shape[-1] - 1}) and teacher '
                        f'(reg_max {t_box.shape[-1] - 1}) differ; distil '
                        'the class scores only (loss_box=None) or use a '
                        'teacher with the student\'s reg_max')
                bins = s_box.shape[-1]
                losses['loss_distill_box'] = self.loss_box(
                    s_box.reshape(-1, bins), t_box.reshape(-1, bins),
                    weight=weight[:, None].expand(-1, 4).reshape(-1),
                    avg_factor=4. * norm)
        return losses
