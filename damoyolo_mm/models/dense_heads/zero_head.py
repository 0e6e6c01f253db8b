"""ZeroHead: the light GFL-style prediction head of DAMO-YOLO."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, Scale
from mmcv.ops import batched_nms
from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
from mmdet.models.task_modules.prior_generators import MlvlPointGenerator
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import (ConfigType, InstanceList, OptConfigType,
                         OptInstanceList, OptMultiConfig)
from mmengine.config import ConfigDict
from mmengine.dist import all_reduce, get_world_size
from mmengine.model import bias_init_with_prob, normal_init
from mmengine.structures import InstanceData
from torch import Tensor

from ..finite_check import check_finite_outputs


def global_avg_factor(local: Tensor) -> float:
    """``max(sum over processes, 1) / world size``: the normaliser of a loss
    that DDP then averages over the processes.

    The reference (and mmdet's heads) use ``max(mean over processes, 1)``,
    the same value unless the mean is below 1; there the clamp depends on
    the number of processes, and N processes x batch b no longer train like
    one process with batch N x b. Clamping the global sum keeps them equal
    (and equals the reference in one process).
    """
    total = local.detach().float().clone()
    all_reduce(total)  # sum; no-op without a process group
    return max(float(total), 1.0) / get_world_size()


class Integral(nn.Module):
    """Expectation of a discrete distribution over the bins 0..reg_max.

    The bin values live in the persistent buffer ``project`` (it is part of
    the state dict, as in the released checkpoints).

    Args:
        reg_max (int): Largest bin value; there are ``reg_max + 1`` bins.
    """

    def __init__(self, reg_max: int = 16) -> None:
        super().__init__()
        self.reg_max = reg_max
        self.register_buffer('project',
                             torch.linspace(0, reg_max, reg_max + 1))

    def forward(self, probs: Tensor) -> Tensor:
        """(..., 4, reg_max + 1) probabilities -> (..., 4) expectations."""
        lead = probs.shape[:-1]
        flat = probs.reshape(-1, self.reg_max + 1)
        out = torch.matmul(flat, self.project.type_as(flat).unsqueeze(1))
        return out.reshape(lead)


@MODELS.register_module()
class ZeroHead(BaseDenseHead):
    """DAMO-YOLO ZeroHead.

    Per level, one convolution predicts class logits (``gfl_cls``) and one
    predicts, for each side (left, top, right, bottom), logits over the
    distance bins 0..reg_max (``gfl_reg``, scaled by a learnable ``Scale``).
    A prior sits at ``(x * stride, y * stride)`` (no half-cell offset); the
    distance of a side is the expectation of its softmax distribution times
    the stride. Training uses AlignOTA assignment, Quality Focal Loss on the
    class probabilities, GIoU and Distribution Focal Loss.

    Args:
        num_classes (int): Number of classes (no background channel).
        in_channels (Sequence[int]): Input channels of every level.
        strides (Sequence[int]): Strides of the levels.
        reg_max (int): Largest distance bin (16; 7 for the nano models).
        last_kernel_size (int): Kernel size of the prediction convolutions
            (3; 1 for Ns / Nm / Nl).
        stacked_convs (int): Convolutions of the optional per-level towers
            (first 1x1, then 3x3); 0 (no tower) in every released model.
        feat_channels (int | Sequence[int], optional): Tower channels; the
            input channels when None. Ignored without a tower.
        norm_cfg (dict): Norm of the tower convolutions.
        act_cfg (dict): Activation of the tower convolutions.
        loss_cls (dict): Classification loss, fed with probabilities when it
            has ``activated=True`` (the DAMO-YOLO setting), else logits.
        loss_bbox (dict): Box regression loss on decoded boxes.
        loss_dfl (dict): Distribution focal loss on the bin logits.
        train_cfg (dict, optional): Needs ``assigner``.
        test_cfg (dict, optional): ``score_thr``, ``nms``, ``max_per_img``
            and ``nms_pre`` (<= 0: no pre-NMS limit).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(
        self,
        num_classes: int = 80,
        in_channels: Sequence[int] = (64, 128, 256),
        strides: Sequence[int] = (8, 16, 32),
        reg_max: int = 16,
        last_kernel_size: int = 3,
        stacked_convs: int = 0,
        feat_channels: Optional[Union[int, Sequence[int]]] = None,
        norm_cfg: ConfigType = dict(type='BN', momentum=0.03, eps=0.001),
        act_cfg: ConfigType = dict(type='ReLU'),
        loss_cls: ConfigType = dict(
            type='QualityFocalLoss',
            use_sigmoid=True,
            activated=True,
            beta=2.0,
            loss_weight=1.0),
        loss_bbox: ConfigType = dict(type='GIoULoss', loss_weight=2.0),
        loss_dfl: ConfigType = dict(
            type='DistributionFocalLoss', loss_weight=0.25),
        train_cfg: OptConfigType = dict(
            assigner=dict(
                type='AlignOTAAssigner',
                center_radius=2.5,
                topk=10,
                cls_weight=1.0,
                iou_weight=3.0)),
        test_cfg: OptConfigType = dict(
            score_thr=0.05,
            nms=dict(type='nms', iou_threshold=0.7),
            max_per_img=500,
            nms_pre=-1),
        init_cfg: OptMultiConfig = None
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        in_channels = list(in_channels)
        strides = list(strides)
        if len(in_channels) != len(strides):
            raise ValueError(
                f'ZeroHead: in_channels {in_channels} and strides {strides} '
                'must have one entry per level')
        if reg_max < 1:
            raise ValueError(f'ZeroHead: reg_max must be >= 1, got {reg_max}')
        if last_kernel_size % 2 != 1:
            raise ValueError('ZeroHead: last_kernel_size must be odd, got '
                             f'{last_kernel_size}')
        self.num_classes = num_classes
        self.cls_out_channels = num_classes
        self.in_channels = in_channels
        self.strides = strides
        self.num_levels = len(strides)
        self.reg_max = reg_max
        self.last_kernel_size = last_kernel_size
        self.stacked_convs = stacked_convs
        if stacked_convs == 0 or feat_channels is None:
            feat_channels = in_channels
        if isinstance(feat_channels, int):
            feat_channels = [feat_channels] * self.num_levels
        self.feat_channels = list(feat_channels)
        if len(self.feat_channels) != self.num_levels:
            raise ValueError(f'ZeroHead: feat_channels {feat_channels} must '
                             f'have {self.num_levels} entries')
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

        self.prior_generator = MlvlPointGenerator(strides, offset=0.)
        self.assigner = None
        if train_cfg is not None and 'assigner' in train_cfg:
            self.assigner = TASK_UTILS.build(train_cfg['assigner'])
        self.integral = Integral(reg_max)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.loss_dfl = MODELS.build(loss_dfl)
        self.cls_activated = bool(getattr(self.loss_cls, 'activated', False))
        self._init_layers()

    def _init_layers(self) -> None:
        """Build the optional towers, the prediction convs and the scales."""
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        for lvl in range(self.num_levels):
            cls_tower, reg_tower = nn.ModuleList(), nn.ModuleList()
            for i in range(self.stacked_convs):
                chn = self.in_channels[lvl] if i == 0 else \
                    self.feat_channels[lvl]
                kernel = 1 if i == 0 else 3
                for tower in (cls_tower, reg_tower):
                    tower.append(
                        ConvModule(
                            chn,
                            self.feat_channels[lvl],
                            kernel,
                            padding=kernel // 2,
                            norm_cfg=self.norm_cfg,
                            act_cfg=self.act_cfg))
            self.cls_convs.append(cls_tower)
            self.reg_convs.append(reg_tower)
        pad = self.last_kernel_size // 2
        self.gfl_cls = nn.ModuleList([
            nn.Conv2d(
                self.feat_channels[lvl],
                self.cls_out_channels,
                self.last_kernel_size,
                padding=pad) for lvl in range(self.num_levels)
        ])
        self.gfl_reg = nn.ModuleList([
            nn.Conv2d(
                self.feat_channels[lvl],
                4 * (self.reg_max + 1),
                self.last_kernel_size,
                padding=pad) for lvl in range(self.num_levels)
        ])
        self.scales = nn.ModuleList([Scale(1.0) for _ in self.strides])

    def init_weights(self) -> None:
        """Normal(0, 0.01) convs, class bias for a 0.01 prior probability."""
        super().init_weights()
        for tower in list(self.cls_convs) + list(self.reg_convs):
            for m in tower.modules():
                if isinstance(m, nn.Conv2d):
                    normal_init(m, std=0.01)
        bias_cls = bias_init_with_prob(0.01)
        for lvl in range(self.num_levels):
            normal_init(self.gfl_cls[lvl], std=0.01, bias=bias_cls)
            normal_init(self.gfl_reg[lvl], std=0.01)

    # ------------------------------------------------------------------
    # forward and decoding
    # ------------------------------------------------------------------
    def forward(self, x: Tuple[Tensor, ...]) -> Tuple[List[Tensor], ...]:
        """Per-level class logits (B, C, H, W) and bin logits after the
        scale (B, 4 * (reg_max + 1), H, W)."""
        if len(x) != self.num_levels:
            raise ValueError(f'ZeroHead.forward: expected {self.num_levels} '
                             f'feature maps, got {len(x)}')
        channels = [int(feat.shape[1]) for feat in x]
        if channels != list(self.in_channels):
            raise ValueError(
                f'ZeroHead.forward: expected in_channels '
                f'{list(self.in_channels)}, got features with channels '
                f'{channels}; set bbox_head.in_channels to the neck\'s '
                'out_channels')
        cls_scores, bbox_preds = [], []
        for lvl, feat in enumerate(x):
            cls_feat, reg_feat = feat, feat
            for conv in self.cls_convs[lvl]:
                cls_feat = conv(cls_feat)
            for conv in self.reg_convs[lvl]:
                reg_feat = conv(reg_feat)
            cls_scores.append(self.gfl_cls[lvl](cls_feat))
            bbox_preds.append(self.scales[lvl](
                self.gfl_reg[lvl](reg_feat)).float())
        return cls_scores, bbox_preds

    def get_priors(self, featmap_sizes: Sequence[Tuple[int, int]],
                   dtype: torch.dtype, device: torch.device) -> Tensor:
        """All priors (N, 4) as (x, y, stride_w, stride_h), level by level,
        row-major inside a level."""
        return torch.cat(
            self.prior_generator.grid_priors(
                featmap_sizes, dtype=dtype, device=device, with_stride=True))

    def _flatten(
        self, cls_scores: Sequence[Tensor], bbox_preds: Sequence[Tensor]
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Flatten the levels.

        Returns class logits (B, N, C), bin logits (B, N, 4, R + 1), bin
        probabilities (B, N, 4, R + 1) and priors (N, 4).
        """
        if len(cls_scores) != self.num_levels or len(bbox_preds) != \
                self.num_levels:
            raise ValueError(
                f'ZeroHead: expected {self.num_levels} levels of outputs, got '
                f'{len(cls_scores)} class and {len(bbox_preds)} box maps')
        bins = self.reg_max + 1
        flat_cls, flat_logits, flat_probs = [], [], []
        for cls_score, bbox_pred in zip(cls_scores, bbox_preds):
            num_imgs, channels, h, w = bbox_pred.shape
            if channels != 4 * bins:
                raise ValueError(
                    f'ZeroHead: box map has {channels} channels, expected '
                    f'4 * (reg_max + 1) = {4 * bins} (reg_max={self.reg_max})')
            logits = bbox_pred.reshape(num_imgs, 4, bins, h, w)
            probs = F.softmax(logits, dim=2)
            flat_logits.append(logits.flatten(3).permute(0, 3, 1, 2))
            flat_probs.append(probs.flatten(3).permute(0, 3, 1, 2))
            flat_cls.append(cls_score.flatten(2).permute(0, 2, 1))
        featmap_sizes = [tuple(c.shape[-2:]) for c in cls_scores]
        priors = self.get_priors(featmap_sizes, bbox_preds[0].dtype,
                                 bbox_preds[0].device)
        return (torch.cat(flat_cls, dim=1), torch.cat(flat_logits, dim=1),
                torch.cat(flat_probs, dim=1), priors)

    def _distances_to_boxes(self, bin_probs: Tensor, priors: Tensor) -> Tensor:
        """(B, N, 4, R + 1) bin probabilities -> (B, N, 4) x1y1x2y2 boxes.

        Written with slices (no per-coordinate indexing): the exported
        graph then has no rank-reducing Gather, which OpenVINO's INT8
        (low-precision) transformations mis-shape in 2026.4.
        """
        dist = self.integral(bin_probs) * priors[:, 2:3]
        xy = priors[None, :, :2]
        return torch.cat([xy - dist[..., :2], xy + dist[..., 2:]], -1)

    def decode_outputs(self, cls_scores: Sequence[Tensor],
                       bbox_preds: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """Flat raw predictions from the per-level outputs of :meth:`forward`.

        Returns:
            tuple: class probabilities (B, N, C) (sigmoid applied) and boxes
            (B, N, 4) x1y1x2y2 in input pixels, not clipped; N runs over
            the levels (stride order), row-major inside a level.
        """
        flat_cls, _, bin_probs, priors = self._flatten(cls_scores, bbox_preds)
        return flat_cls.sigmoid(), self._distances_to_boxes(bin_probs, priors)

    def predict_raw(self, x: Tuple[Tensor, ...]) -> Tuple[Tensor, Tensor]:
        """Features -> flat (scores (B, N, C), boxes (B, N, 4)), no NMS."""
        return self.decode_outputs(*self(x))

    # ------------------------------------------------------------------
    # inference
    # ------------------------------------------------------------------
    def predict_by_feat(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        score_factors: Optional[List[Tensor]] = None,
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: OptConfigType = None,
                        rescale: bool = False,
                        with_nms: bool = True) -> InstanceList:
        """Decode, threshold, NMS; one InstanceData per image."""
        if score_factors is not None:
            raise ValueError('ZeroHead.predict_by_feat: the head has no score '
                             'factors, got score_factors')
        scores, bboxes = self.decode_outputs(cls_scores, bbox_preds)
        if batch_img_metas is None:
            batch_img_metas = [{} for _ in range(scores.size(0))]
        if len(batch_img_metas) != scores.size(0):
            raise ValueError(
                f'ZeroHead.predict_by_feat: {len(batch_img_metas)} img_metas '
                f'for a batch of {scores.size(0)}')
        return [
            self.postprocess_single(
                scores[i],
                bboxes[i],
                img_meta=batch_img_metas[i],
                cfg=cfg,
                rescale=rescale,
                with_nms=with_nms) for i in range(scores.size(0))
        ]

    def postprocess_single(self,
                           scores: Tensor,
                           bboxes: Tensor,
                           img_meta: Optional[dict] = None,
                           cfg: OptConfigType = None,
                           rescale: bool = False,
                           with_nms: bool = True) -> InstanceData:
        """Post-process the flat predictions of one image.

        Every (prior, class) pair with score > ``score_thr`` is a candidate
        (the prior's box shared by its classes); optionally only the best
        ``nms_pre`` candidates are kept; class-wise NMS; results sorted by
        score and capped at ``max_per_img``. NMS runs in the network-input
        frame; with ``rescale`` the kept boxes are then divided by
        ``img_meta['scale_factor']`` (w, h).

        Args:
            scores (Tensor): (N, C) class probabilities.
            bboxes (Tensor): (N, 4) boxes x1y1x2y2.
        """
        cfg = self.test_cfg if cfg is None else cfg
        if cfg is None:
            raise ValueError('ZeroHead: test_cfg is needed for prediction')
        cfg = ConfigDict(cfg)
        score_thr = cfg.get('score_thr', 0.)
        nms_pre = cfg.get('nms_pre', -1)
        max_per_img = cfg.get('max_per_img', -1)

        prior_inds, labels = (scores > score_thr).nonzero(as_tuple=True)
        cand_scores = scores[prior_inds, labels]
        if nms_pre is not None and 0 < nms_pre < cand_scores.numel():
            cand_scores, order = cand_scores.topk(nms_pre)
            prior_inds, labels = prior_inds[order], labels[order]
        cand_bboxes = bboxes[prior_inds]

        if with_nms:
            if 'nms' not in cfg:
                raise KeyError('ZeroHead: test_cfg needs "nms" (e.g. '
                               "dict(type='nms', iou_threshold=0.7))")
            if cand_scores.numel() > 0:
                _, keep = batched_nms(cand_bboxes, cand_scores, labels,
                                      cfg.nms)
                # deterministic order: by score, equal scores in candidate
                # order (prior-major, then class)
                keep = keep.sort().values
            else:
                keep = labels.new_zeros((0, ))
        else:
            keep = torch.arange(cand_scores.numel(), device=scores.device)
        order = cand_scores[keep].sort(descending=True, stable=True)[1]
        keep = keep[order]
        cand_bboxes, cand_scores = cand_bboxes[keep], cand_scores[keep]
        labels = labels[keep]
        if max_per_img is not None and max_per_img > 0:
            cand_bboxes = cand_bboxes[:max_per_img]
            cand_scores = cand_scores[:max_per_img]
            labels = labels[:max_per_img]

        if rescale:
            if img_meta is None or 'scale_factor' not in img_meta:
                raise KeyError('ZeroHead: rescale=True needs '
                               'img_meta["scale_factor"]')
            scale = cand_bboxes.new_tensor(img_meta['scale_factor'])
            cand_bboxes = cand_bboxes / scale.repeat(2)

        results = InstanceData()
        results.bboxes = cand_bboxes
        results.scores = cand_scores
        results.labels = labels
        return results

    # ------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------
    def get_targets(self, cls_probs: Tensor, decoded_bboxes: Tensor,
                    priors: Tensor,
                    batch_gt_instances: InstanceList) -> Dict[str, Tensor]:
        """AlignOTA targets for a batch.

        Args:
            cls_probs (Tensor): (B, N, C) class probabilities.
            decoded_bboxes (Tensor): (B, N, 4) decoded predicted boxes.
            priors (Tensor): (N, 4) as (x, y, stride_w, stride_h).
            batch_gt_instances (list[InstanceData]): ``bboxes``, ``labels``.

        Returns:
            dict of (B, N[, 4]) tensors: ``labels`` (num_classes =
            background), ``label_scores`` (IoU of the matched pair, 0 for
            background), ``bbox_targets`` (matched GT box), ``dfl_targets``
            (l, t, r, b in strides, clamped to [0, reg_max - 0.1]),
            ``fg_mask``; and ``num_pos`` (int).
        """
        if self.assigner is None:
            raise ValueError('ZeroHead: train_cfg.assigner is needed for '
                             'training')
        num_imgs, num_priors, _ = cls_probs.shape
        if len(batch_gt_instances) != num_imgs:
            raise ValueError(
                f'ZeroHead.get_targets: {len(batch_gt_instances)} '
                f'gt instances for a batch of {num_imgs}')
        device = cls_probs.device
        gt_boxes_list = [
            get_box_tensor(gt.bboxes).reshape(-1, 4).to(
                device=device, dtype=torch.float32)
            for gt in batch_gt_instances
        ]
        num_gts = max([len(b) for b in gt_boxes_list] + [0])
        gt_bboxes = cls_probs.new_zeros((num_imgs, num_gts, 4))
        gt_labels = torch.zeros((num_imgs, num_gts),
                                dtype=torch.long,
                                device=device)
        gt_valid = torch.zeros((num_imgs, num_gts),
                               dtype=torch.bool,
                               device=device)
        for i, (boxes, gt) in enumerate(zip(gt_boxes_list,
                                            batch_gt_instances)):
            n = boxes.size(0)
            gt_bboxes[i, :n] = boxes
            gt_labels[i, :n] = gt.labels.to(device).long().reshape(-1)
            gt_valid[i, :n] = True

        assign = self.assigner.batch_assign(cls_probs, priors,
                                            decoded_bboxes, gt_bboxes,
                                            gt_labels, gt_valid)
        fg_mask = assign['fg_mask']
        labels = torch.where(fg_mask, assign['labels'],
                             torch.full_like(assign['labels'],
                                             self.num_classes))
        label_scores = assign['ious']
        if num_gts > 0:
            gt_inds = assign['gt_inds'].clamp(min=0)
            matched = gt_bboxes.gather(
                1, gt_inds[..., None].expand(-1, -1, 4))
        else:
            matched = cls_probs.new_zeros((num_imgs, num_priors, 4))
        bbox_targets = matched * fg_mask[..., None]
        stride = priors[:, 2, None]
        prior_xy = priors[:, :2] / stride
        box_s = matched / stride
        dfl_targets = torch.stack([
            prior_xy[:, 0] - box_s[..., 0], prior_xy[:, 1] - box_s[..., 1],
            box_s[..., 2] - prior_xy[:, 0], box_s[..., 3] - prior_xy[:, 1]
        ], -1).clamp(min=0, max=self.reg_max - 0.1)
        dfl_targets = dfl_targets * fg_mask[..., None]
        return dict(
            labels=labels,
            label_scores=label_scores,
            bbox_targets=bbox_targets,
            dfl_targets=dfl_targets,
            fg_mask=fg_mask,
            num_pos=int(fg_mask.sum()))

    def loss_by_feat(
            self,
            cls_scores: List[Tensor],
            bbox_preds: List[Tensor],
            batch_gt_instances: InstanceList,
            batch_img_metas: List[dict],
            batch_gt_instances_ignore: OptInstanceList = None
    ) -> Dict[str, Tensor]:
        """QFL over all priors, GIoU and DFL over the positives.

        QFL is averaged over max(num_pos, 1); GIoU and DFL are weighted per
        positive by its detached max class probability and averaged over
        max(sum of these weights, 1) (times 4 for DFL, one term per side).
        Both counts are summed over the processes of a distributed run
        (:func:`global_avg_factor`).
        ``batch_gt_instances_ignore`` takes no part. The loss runs in fp32
        with autocast disabled (BCE on probabilities is not autocast-safe).
        Non-finite outputs raise
        :class:`~damoyolo_mm.models.finite_check.NonFiniteLossError` before
        they reach the assigner.
        """
        check_finite_outputs('the assigner', cls_scores=cls_scores,
                             bbox_preds=bbox_preds)
        device_type = cls_scores[0].device.type
        with torch.autocast(device_type=device_type, enabled=False):
            return self._loss_fp32([c.float() for c in cls_scores],
                                   [b.float() for b in bbox_preds],
                                   batch_gt_instances)

    def _loss_fp32(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                   batch_gt_instances: InstanceList) -> Dict[str, Tensor]:
        """Body of :meth:`loss_by_feat` (fp32 inputs, autocast off)."""
        flat_cls, flat_logits, bin_probs, priors = self._flatten(
            cls_scores, bbox_preds)
        num_imgs, num_priors, num_classes = flat_cls.shape
        bins = self.reg_max + 1
        cls_probs = flat_cls.sigmoid()
        decoded = self._distances_to_boxes(bin_probs, priors)

        targets = self.get_targets(cls_probs.detach(), decoded.detach(),
                                   priors, batch_gt_instances)
        num_total_pos = global_avg_factor(
            cls_probs.new_tensor(float(targets['num_pos'])))

        cls_input = cls_probs if self.cls_activated else flat_cls
        loss_cls = self.loss_cls(
            cls_input.reshape(-1, num_classes),
            (targets['labels'].reshape(-1),
             targets['label_scores'].reshape(-1)),
            avg_factor=num_total_pos)

        pos_inds = targets['fg_mask'].reshape(-1).nonzero(
            as_tuple=False).squeeze(1)
        weight_targets = cls_probs.detach().reshape(
            -1, num_classes).max(dim=1)[0][pos_inds]
        norm_factor = global_avg_factor(weight_targets.sum())
        if pos_inds.numel() > 0:
            loss_bbox = self.loss_bbox(
                decoded.reshape(-1, 4)[pos_inds],
                targets['bbox_targets'].reshape(-1, 4)[pos_inds],
                weight=weight_targets,
                avg_factor=norm_factor)
            loss_dfl = self.loss_dfl(
                flat_logits.reshape(-1, 4, bins)[pos_inds].reshape(-1, bins),
                targets['dfl_targets'].reshape(-1, 4)[pos_inds].reshape(-1),
                weight=weight_targets[:, None].expand(-1, 4).reshape(-1),
                avg_factor=4.0 * norm_factor)
        else:
            zero = flat_logits.sum() * 0.
            loss_bbox, loss_dfl = zero, zero.clone()
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox, loss_dfl=loss_dfl)
