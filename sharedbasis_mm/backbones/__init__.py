from .tied_resnet import (TiedBottleneck, TiedResNet, TiedResNeXt,
                          TiedSEResNet, TiedSplitConv)

__all__ = [
    'TiedBottleneck', 'TiedSplitConv', 'TiedResNet', 'TiedResNeXt',
    'TiedSEResNet'
]
