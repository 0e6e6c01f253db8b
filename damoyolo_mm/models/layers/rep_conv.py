"""Re-parameterisable 3x3 convolution (RepVGG style, no identity branch)."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_activation_layer
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor

from .utils import DEFAULT_NORM_CFG


def fuse_conv_bn_tensors(conv: nn.Conv2d,
                         bn: Optional[nn.Module]) -> Tuple[Tensor, Tensor]:
    """Kernel and bias of ``bn(conv(x))`` folded into one convolution.

    ``bn`` may be ``None`` or an ``nn.Identity`` (conv+BN already folded);
    then the convolution's own weight and bias are returned.
    """
    weight = conv.weight
    bias = conv.bias if conv.bias is not None else torch.zeros(
        conv.out_channels, dtype=weight.dtype, device=weight.device)
    if bn is None or isinstance(bn, nn.Identity):
        return weight, bias
    std = (bn.running_var + bn.eps).sqrt()
    scale = bn.weight / std
    return (weight * scale.reshape(-1, 1, 1, 1),
            bn.bias + (bias - bn.running_mean) * scale)


@MODELS.register_module()
class RepConv(BaseModule):
    """3x3 conv + BN in parallel with 1x1 conv + BN, summed, then activated.

    At inference the two branches collapse into a single biased 3x3
    convolution with :meth:`switch_to_deploy`, giving identical outputs.
    Child names (``rbr_dense``, ``rbr_1x1``, ``rbr_reparam``) follow the
    RepVGG convention, each branch a :class:`~mmcv.cnn.ConvModule` without
    activation.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Must be 3.
        stride (int): Stride of both branches.
        groups (int): Groups of both branches.
        norm_cfg (dict): Norm layer of the branches.
        act_cfg (dict, optional): Activation after the sum; ``None`` for
            identity.
        deploy (bool): Build directly in the fused (single conv) form.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int = 3,
                 stride: int = 1,
                 groups: int = 1,
                 norm_cfg: ConfigType = DEFAULT_NORM_CFG,
                 act_cfg: OptConfigType = dict(type='ReLU', inplace=True),
                 deploy: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if kernel_size != 3:
            raise ValueError(
                f'RepConv supports kernel_size=3 only, got {kernel_size}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.groups = groups
        self.deploy = False
        self.act = (build_activation_layer(act_cfg)
                    if act_cfg is not None else nn.Identity())
        self.rbr_dense = ConvModule(
            in_channels, out_channels, 3, stride=stride, padding=1,
            groups=groups, norm_cfg=norm_cfg, act_cfg=None)
        self.rbr_1x1 = ConvModule(
            in_channels, out_channels, 1, stride=stride, padding=0,
            groups=groups, norm_cfg=norm_cfg, act_cfg=None)
        if deploy:
            self.switch_to_deploy()

    def forward(self, x: Tensor) -> Tensor:
        if self.deploy:
            return self.act(self.rbr_reparam(x))
        return self.act(self.rbr_dense(x) + self.rbr_1x1(x))

    def get_equivalent_kernel_bias(self) -> Tuple[Tensor, Tensor]:
        """Kernel (out, in/groups, 3, 3) and bias of the fused convolution."""
        k3, b3 = fuse_conv_bn_tensors(self.rbr_dense.conv,
                                      getattr(self.rbr_dense, 'bn', None))
        k1, b1 = fuse_conv_bn_tensors(self.rbr_1x1.conv,
                                      getattr(self.rbr_1x1, 'bn', None))
        return k3 + nn.functional.pad(k1, [1, 1, 1, 1]), b3 + b1

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Replace both branches by one biased 3x3 conv (idempotent)."""
        if self.deploy:
            return
        kernel, bias = self.get_equivalent_kernel_bias()
        dense = self.rbr_dense.conv
        self.rbr_reparam = nn.Conv2d(
            self.in_channels, self.out_channels, 3, stride=dense.stride,
            padding=dense.padding, dilation=dense.dilation,
            groups=self.groups, bias=True).to(kernel.device, kernel.dtype)
        self.rbr_reparam.weight.copy_(kernel)
        self.rbr_reparam.bias.copy_(bias)
        del self.rbr_dense
        del self.rbr_1x1
        self.deploy = True
