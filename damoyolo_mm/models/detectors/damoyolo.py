"""DAMO-YOLO detector."""
from mmcv.cnn import fuse_conv_bn
from mmdet.models.detectors.single_stage import SingleStageDetector
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig

from .convert import convert_official_in_place


@MODELS.register_module()
class DAMOYOLO(SingleStageDetector):
    """DAMO-YOLO: TinyNAS backbone, RepGFPN neck, ZeroHead.

    A plain :class:`~mmdet.models.SingleStageDetector` plus the deploy
    switch and the loading of official checkpoints.
    :meth:`switch_to_deploy` re-parameterises every module that has
    a ``switch_to_deploy`` method (the :class:`RepConv` layers) and then
    folds every BatchNorm into the convolution before it; outputs stay the
    same up to float rounding.

    An official DAMO-YOLO checkpoint (``{'model': state_dict}`` with the
    official key names) loads directly wherever a checkpoint is accepted
    (``load_from``, ``--checkpoint``, ``init_detector``, ``DetInferencer``,
    MMDeploy, ``load_state_dict``): :meth:`_load_from_state_dict` sees the
    whole dict first and converts it in memory
    (:func:`~.convert.convert_official_in_place`), strictly: a checkpoint
    of another variant raises an error naming the variant it fits.

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
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            bbox_head=bbox_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.deploy = False
        if deploy:
            self.switch_to_deploy()

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
        return self

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        # torch's and mmengine's load_state_dict call this with the whole
        # dict before the children take their keys from it: an official
        # checkpoint is converted here, in place
        convert_official_in_place(state_dict, self, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
