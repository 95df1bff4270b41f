"""MobileNetV2 whose repeated inverted-residual blocks share 1 x 1 bases."""
from typing import Dict, Optional

import torch.nn as nn
from mmcv.cnn import ConvModule, build_activation_layer
from mmpretrain.models.backbones import MobileNetV2

from ..attention import ECALayer
from ..layers import (BasisConv2d, SharedBasisSequential, SwitchToDeployMixin,
                      check_basis_conv_cfg, make_filter_basis)
from ..registry import MODELS
from ..utils.validation import check_bool, check_choice
from .train_mode import ReturnsSelfOnTrain

# The shared convolutions, by the names of their bases in the stage, and
# their positions in an inverted residual's ``conv`` sequence: the 1 x 1
# expansion (0) and the 1 x 1 projection (2).
SHARE_MODES = {
    'expand': {
        'shared_basis_expand': 0
    },
    'expand_project': {
        'shared_basis_expand': 0,
        'shared_basis_project': 2
    },
}
# The authors' ECA kernel sizes: 1 for the sharing blocks of under 96
# channels, 3 from 96 on.
ECA_WIDE_CHANNELS = 96


@MODELS.register_module()
class SharedBasisMobileNetV2(SwitchToDeployMixin, ReturnsSelfOnTrain,
                             MobileNetV2):
    """MobileNetV2-Shared and MobileNetV2-Shared‡ of Learning Deeply Shared Filter Bases (Table 1).

    In each stage that repeats its inverted-residual block at least twice
    after the first, the repeated blocks share their largest convolutions as
    filter bases, as the authors' code does (stages of 32, 64, 96 and 160
    channels): the 1 x 1 expansion (``share='expand'``, MobileNetV2-Shared)
    or the expansion and the 1 x 1 projection (``share='expand_project'``,
    MobileNetV2-Shared‡). The first block of each stage, the depthwise
    convolutions and every BatchNorm stay unshared. Each stage makes its
    bases, owns them (state-dict keys ``layer<i>.shared_basis_expand`` and
    ``layer<i>.shared_basis_project``) and hands them to its blocks. Its one
    block family takes its sharing argument, ``share``, directly (no
    ``basis_cfg``).

    Three options build the authors' structure where it differs from
    mmpretrain's MobileNetV2 (their released models use all three; the two
    convolutions with bias before a BatchNorm, in their stem and last layer,
    fold exactly into the BatchNorm and need no option):

    Args:
        share (str): ``'expand'`` or ``'expand_project'``.
            Defaults to ``'expand'``.
        always_expand (bool): Build the 1 x 1 expansion (with norm and
            activation) also in the block of expand ratio 1 (the first
            layer), as the authors' code does. Defaults to False.
        block_act_cfg (dict, optional): The activation inside the inverted
            residuals; None for ``act_cfg``. The authors' code uses ReLU
            there and ReLU6 only in the stem and the last convolution.
            Defaults to None.
        eca (bool): Put an :class:`~sharedbasis_mm.attention.ECALayer` after
            the projection of each sharing block (kernel 1 under 96
            channels, else 3), as the authors' MobileNetV2-Shared‡.
            Defaults to False.
        deploy (bool): Build the inference structure of
            :meth:`switch_to_deploy` (plain convolutions with bias,
            BatchNorms folded away), into which a fused checkpoint loads.
            Defaults to False.
        **kwargs: The arguments of mmpretrain's ``MobileNetV2``.
    """

    def __init__(self,
                 share: str = 'expand',
                 always_expand: bool = False,
                 block_act_cfg: Optional[Dict] = None,
                 eca: bool = False,
                 deploy: bool = False,
                 **kwargs) -> None:
        name = type(self).__name__
        check_choice('share', share, sorted(SHARE_MODES), owner=name)
        check_bool('deploy', deploy, owner=name)
        check_basis_conv_cfg(name, kwargs.get('conv_cfg'))
        self.share = share
        self.always_expand = always_expand
        self.block_act_cfg = block_act_cfg
        self.eca = eca
        super().__init__(**kwargs)
        if deploy:
            self.switch_to_deploy()

    def _freeze_stages(self) -> None:
        """mmpretrain's freezing, with the stem's norm in eval mode too (as
        the ResNets' ``norm1``): mmpretrain's MobileNetV2 freezes the stem's
        parameters but leaves its BatchNorm updating its statistics."""
        super()._freeze_stages()
        if self.frozen_stages >= 0:
            self.conv1.eval()

    def make_layer(self, out_channels: int, num_blocks: int, stride: int,
                   expand_ratio: int) -> nn.Sequential:
        in_channels = self.in_channels
        layer = super().make_layer(out_channels, num_blocks, stride,
                                   expand_ratio)
        if self.always_expand and expand_ratio == 1:
            for block in layer:
                expand = ConvModule(
                    in_channels,
                    in_channels,
                    1,
                    conv_cfg=self.conv_cfg,
                    norm_cfg=self.norm_cfg,
                    act_cfg=self.act_cfg)
                block.conv = nn.Sequential(expand, *block.conv)
                in_channels = out_channels
        if self.block_act_cfg is not None:
            for conv_module in layer.modules():
                if getattr(conv_module, 'with_activation', False):
                    conv_module.activate = build_activation_layer(
                        self.block_act_cfg)
        repeated = list(layer)[1:]
        if len(repeated) < 2 or expand_ratio == 1:
            return layer
        if self.eca:
            kernel_size = 1 if out_channels < ECA_WIDE_CHANNELS else 3
            for block in repeated:
                block.conv.append(ECALayer(kernel_size))
        # the stage makes each basis with the shape of the convolution it
        # replaces, owns it and hands it to the repeated blocks
        bases: Dict[str, nn.Parameter] = {}
        for block in repeated:
            for name, index in SHARE_MODES[self.share].items():
                conv_module = block.conv[index]
                conv = conv_module.conv
                if name not in bases:
                    bases[name] = make_filter_basis(conv.in_channels,
                                                    conv.out_channels,
                                                    conv.kernel_size,
                                                    conv.groups)
                conv_module.conv = BasisConv2d.like(conv, bases[name])
        return SharedBasisSequential(*layer, bases=bases)
