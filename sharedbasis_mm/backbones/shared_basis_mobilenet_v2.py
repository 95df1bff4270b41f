"""MobileNetV2 whose repeated inverted-residual blocks share 1 x 1 bases."""
from typing import Dict

import torch.nn as nn
from mmpretrain.models.backbones import MobileNetV2

from ..deploy import fuse_model
from ..layers import (BasisConv2d, SharedBasisSequential,
                      check_basis_conv_cfg)
from ..registry import MODELS
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


@MODELS.register_module()
class SharedBasisMobileNetV2(ReturnsSelfOnTrain, MobileNetV2):
    """MobileNetV2-Shared and MobileNetV2-Shared‡ of Learning Deeply Shared Filter Bases (Table 1).

    In each stage that repeats its inverted-residual block at least twice
    after the first, the repeated blocks share their largest convolutions as
    filter bases, as the authors' code does (stages of 32, 64, 96 and 160
    channels): the 1 x 1 expansion (``share='expand'``, MobileNetV2-Shared)
    or the expansion and the 1 x 1 projection (``share='expand_project'``,
    MobileNetV2-Shared‡). The first block of each stage, the depthwise
    convolutions and every BatchNorm stay unshared. Each stage owns its
    bases: state-dict keys ``layer<i>.shared_basis_expand`` and
    ``layer<i>.shared_basis_project``.

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
        check_basis_conv_cfg(type(self).__name__, kwargs.get('conv_cfg'))
        self.share = share
        super().__init__(**kwargs)
        self.deploy = deploy
        if deploy:
            fuse_model(self)

    def make_layer(self, out_channels: int, num_blocks: int, stride: int,
                   expand_ratio: int) -> nn.Sequential:
        layer = super().make_layer(out_channels, num_blocks, stride,
                                   expand_ratio)
        repeated = list(layer)[1:]
        if len(repeated) < 2 or expand_ratio == 1:
            return layer
        first: Dict[str, BasisConv2d] = {}
        for block in repeated:
            for name, index in SHARE_MODES[self.share].items():
                conv_module = block.conv[index]
                basis = first[name].shared_basis if name in first else None
                conv_module.conv = BasisConv2d.like(conv_module.conv, basis)
                first.setdefault(name, conv_module.conv)
        group = SharedBasisSequential(*layer)
        for name, conv in first.items():
            group.own_basis(name, conv)
        return group
