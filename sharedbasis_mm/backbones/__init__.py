from .shared_basis_mobilenet_v2 import SharedBasisMobileNetV2
from .shared_basis_resnet import SharedBasisResNet, SharedBasisResNetCifar
from .tied_resnet import (TiedBottleneck, TiedResNet, TiedResNeXt,
                          TiedSEResNet, TiedSplitConv)

__all__ = [
    'SharedBasisResNet', 'SharedBasisResNetCifar', 'SharedBasisMobileNetV2',
    'TiedBottleneck', 'TiedSplitConv', 'TiedResNet', 'TiedResNeXt',
    'TiedSEResNet'
]
