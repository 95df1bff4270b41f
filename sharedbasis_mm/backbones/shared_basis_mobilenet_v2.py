"""MobileNetV2 whose repeated inverted-residual blocks share 1 x 1 bases."""
from typing import Dict

import torch.nn as nn
from mmpretrain.models.backbones import MobileNetV2

from ..deploy import fuse_model
from ..layers import BasisConv2d, FilterBasis
from ..registry import MODELS

# Positions, in an inverted residual's ``conv`` sequence, of the shared
# convolutions: the 1 x 1 expansion (0) and the 1 x 1 projection (2).
SHARE_MODES = {'expand': (0, ), 'expand_project': (0, 2)}


@MODELS.register_module()
class SharedBasisMobileNetV2(MobileNetV2):
    """MobileNetV2-Shared and MobileNetV2-Shared‡ of Learning Deeply Shared Filter Bases (Table 1).

    In each stage that repeats its inverted-residual block at least twice
    after the first, the repeated blocks share their largest convolutions as
    filter bases, as the authors' code does (stages of 32, 64, 96 and 160
    channels): the 1 x 1 expansion (``share='expand'``, MobileNetV2-Shared)
    or the expansion and the 1 x 1 projection (``share='expand_project'``,
    MobileNetV2-Shared‡). The first block of each stage, the depthwise
    convolutions and every BatchNorm stay unshared.

    Args:
        share (str): ``'expand'`` or ``'expand_project'``.
            Defaults to ``'expand'``.
        deploy (bool): Build the inference structure of
            :func:`~sharedbasis_mm.deploy.fuse_model` (plain convolutions
            with bias, BatchNorms folded away), into which a fused
            checkpoint loads. Defaults to False.
        **kwargs: The arguments of mmpretrain's ``MobileNetV2``.
    """

    def __init__(self,
                 share: str = 'expand',
                 deploy: bool = False,
                 **kwargs) -> None:
        if share not in SHARE_MODES:
            raise ValueError(f'SharedBasisMobileNetV2: unknown share='
                             f'{share!r}; expected one of '
                             f'{sorted(SHARE_MODES)}')
        self.share = share
        super().__init__(**kwargs)
        self.deploy = deploy
        if deploy:
            fuse_model(self)

    def _freeze_stages(self) -> None:
        """mmpretrain's freezing, with the stem's norm in eval mode too (as
        the ResNets' ``norm1``): mmpretrain's MobileNetV2 freezes the stem's
        parameters but leaves its BatchNorm updating its statistics."""
        super()._freeze_stages()
        if self.frozen_stages >= 0:
            self.conv1.eval()

    def make_layer(self, out_channels: int, num_blocks: int, stride: int,
                   expand_ratio: int) -> nn.Sequential:
        layer = super().make_layer(out_channels, num_blocks, stride,
                                   expand_ratio)
        repeated = list(layer)[1:]
        if len(repeated) < 2 or expand_ratio == 1:
            return layer
        bases: Dict[int, FilterBasis] = {}
        for block in repeated:
            for index in SHARE_MODES[self.share]:
                conv_module = block.conv[index]
                conv_module.conv = BasisConv2d.like(conv_module.conv,
                                                    bases.get(index))
                bases[index] = conv_module.conv.shared_basis
        return layer
