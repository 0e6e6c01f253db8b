"""DAMO-YOLO detector."""
from typing import Optional

import torch
from mmcv.cnn import fuse_conv_bn
from mmdet.models.detectors.single_stage import SingleStageDetector
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.logging import MMLogger

from ..finite_check import check_finite_losses
from ..checkpoint import (PartialLoad, check_state_dict,
                          convert_official_in_place)


_FORMATS = {
    'channels_last': torch.channels_last,
    'contiguous': torch.contiguous_format,
    None: None,
}


@MODELS.register_module()
class DAMOYOLO(SingleStageDetector):
    """DAMO-YOLO: TinyNAS backbone, RepGFPN neck, ZeroHead.

    A plain :class:`~mmdet.models.SingleStageDetector` plus the deploy
    switch and the loading of official checkpoints.
    :meth:`switch_to_deploy` re-parameterises every module that has
    a ``switch_to_deploy`` method (the :class:`RepConv` layers) and then
    folds every BatchNorm into the convolution before it; outputs stay the
    same up to float rounding.

    Loading goes through :meth:`_load_from_state_dict`, which sees the whole
    incoming dict first, on every path (``load_from``, ``--checkpoint``,
    ``init_detector``, ``DetInferencer``, MMDeploy, ``load_state_dict``):

    - an official DAMO-YOLO checkpoint (``{'model': state_dict}`` with the
      official key names) is converted in memory
      (:func:`~damoyolo_mm.models.checkpoint.convert_official_in_place`);
    - then the dict is checked strictly: a checkpoint that does not fit
      raises :class:`~damoyolo_mm.models.checkpoint.StateDictMismatchError`
      with the counts, the first keys and the released variant it fits,
      instead of leaving random weights, except for the keys that
      ``partial_load`` declares (see
      :mod:`damoyolo_mm.models.checkpoint.strict_load`).

    Args:
        backbone (dict): Backbone config.
        neck (dict): Neck config.
        bbox_head (dict): Head config.
        train_cfg (dict, optional): Passed to the head.
        test_cfg (dict, optional): Passed to the head.
        data_preprocessor (dict, optional): Data preprocessor config
            (DAMO-YOLO feeds raw 0..255 RGB pixels, mean 0 / std 1).
        deploy (bool): Build the model directly in the deploy form, e.g.
            to load a checkpoint written by
            ``tools/convert_official.py --fuse``.
        partial_load (dict, optional): ``dict(skip=[regex, ...])``: state-dict
            keys (full match) that may be missing, unexpected or of another
            shape when loading a checkpoint; they keep their initial values
            and are logged. E.g. fine-tuning with another class count:
            ``dict(skip=[r'bbox_head\\.gfl_cls\\..*'])``. Default: strict.
        infer_memory_format (str, optional): Memory format of the weights
            (and so of the activations) for inference: 'channels_last'
            (default), 'contiguous', or None to leave the weights as they
            are. Applied by :meth:`switch_to_deploy` and by the first
            :meth:`predict` in eval mode (``tools/test.py``,
            ``inference_detector``, ``DetInferencer``, validation); a later
            ``train()`` restores the format the weights had before, so
            training is unaffected. On CPU the channels-last convolutions of
            oneDNN are faster for every DAMO-YOLO variant (fused T at 640:
            about 0.7x the NCHW latency, Ns at 416 about 0.5x, measured by
            ``tools/benchmark_latency.py``); outputs agree with NCHW to
            float rounding (~1e-6).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 bbox_head: ConfigType,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 deploy: bool = False,
                 partial_load: Optional[dict] = None,
                 infer_memory_format: Optional[str] = 'channels_last',
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            bbox_head=bbox_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.partial_load = PartialLoad.build(partial_load)
        if infer_memory_format not in _FORMATS:
            raise ValueError(
                f'infer_memory_format must be one of {sorted(_FORMATS, key=str)}'
                f', got {infer_memory_format!r}')
        self.infer_memory_format = infer_memory_format
        # format of the weights before predict() converted them (restored
        # by train()); None when predict() changed nothing
        self._format_before_predict: Optional[str] = None
        self.deploy = False
        if deploy:
            self.switch_to_deploy()

    def loss(self, batch_inputs, batch_data_samples) -> dict:
        """The head's losses; NaN / inf terms raise
        :class:`~damoyolo_mm.models.finite_check.NonFiniteLossError` naming
        the iteration before the backward pass."""
        losses = super().loss(batch_inputs, batch_data_samples)
        check_finite_losses(losses)
        return losses

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        """Convert an official checkpoint in place and check the whole
        incoming state dict (this module is the first to see it, before the
        children take their keys); then load as usual."""
        convert_official_in_place(state_dict, prefix)
        check_state_dict(state_dict, prefix, self.state_dict(),
                         self.partial_load, MMLogger.get_current_instance())
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def switch_to_deploy(self) -> 'DAMOYOLO':
        """Re-parameterise every RepConv and fold conv+BN (in place).

        Idempotent. The model must be in eval mode afterwards (the folded
        convolutions use the BN running statistics).
        """
        if self.deploy:
            return self
        for m in list(self.modules()):
            if m is not self and hasattr(m, 'switch_to_deploy'):
                m.switch_to_deploy()
        fuse_conv_bn(self)
        self.deploy = True
        if self.infer_memory_format is not None:
            self.to(memory_format=_FORMATS[self.infer_memory_format])
        return self

    def weights_memory_format(self) -> str:
        """'channels_last' or 'contiguous': the layout of the first 4-D
        weight (all convolution weights share it after ``.to()``)."""
        for p in self.parameters():
            if p.dim() == 4:
                return 'channels_last' if p.is_contiguous(
                    memory_format=torch.channels_last
                ) and not p.is_contiguous() else 'contiguous'
        return 'contiguous'

    def predict(self, batch_inputs, batch_data_samples, rescale: bool = True):
        """mmdet ``predict`` with the weights in ``infer_memory_format``
        when the model is in eval mode (see the class doc)."""
        if not self.training and self.infer_memory_format is not None:
            current = self.weights_memory_format()
            if current != self.infer_memory_format:
                if self._format_before_predict is None:
                    self._format_before_predict = current
                self.to(memory_format=_FORMATS[self.infer_memory_format])
        return super().predict(batch_inputs, batch_data_samples, rescale)

    def train(self, mode: bool = True) -> 'DAMOYOLO':
        """``nn.Module.train``; back to training it restores the weight
        layout that :meth:`predict` changed (values are unchanged)."""
        super().train(mode)
        if mode and self._format_before_predict is not None:
            self.to(memory_format=_FORMATS[self._format_before_predict])
            self._format_before_predict = None
        return self
