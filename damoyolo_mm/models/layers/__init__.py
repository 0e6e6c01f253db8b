from .damo_blocks import (DAMOFocus, DAMOSELayer, DAMOSPPBottleneck,
                          MobileInvertedBlock, RepGFPNBasicBlock,
                          RepGFPNCSPStage, TinyNASResBlock, build_downsample)
from .rep_conv import RepConv, fuse_conv_bn_tensors
from .utils import DEFAULT_NORM_CFG, expanded_channels, make_divisible

__all__ = [
    'RepConv', 'fuse_conv_bn_tensors', 'DAMOFocus', 'DAMOSPPBottleneck',
    'TinyNASResBlock', 'DAMOSELayer', 'MobileInvertedBlock',
    'RepGFPNBasicBlock', 'RepGFPNCSPStage', 'build_downsample',
    'DEFAULT_NORM_CFG', 'make_divisible', 'expanded_channels'
]
