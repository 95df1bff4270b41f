from .shared_basis_densenet import (SharedBasisDenseNet,
                                    SharedBasisDenseNetCifar)
from .shared_basis_mobilenet_v2 import SharedBasisMobileNetV2
from .shared_basis_resnet import SharedBasisResNet, SharedBasisResNetCifar
from .shared_basis_resnext import SharedBasisResNeXt, SharedBasisResNeXtCifar
from .tied_resnet import (TiedBottleneck, TiedResNet, TiedResNeXt,
                          TiedSEResNet, TiedSplitConv)
from .tied_resnest import (GroupedTBC, TiedResNeSt, TiedResNeStBottleneck,
                           TiedSplitAttentionConv2d)
from .tied_se_backbones import EfficientNetTiedSE, SEResNetTiedSE

__all__ = [
    'SharedBasisResNet', 'SharedBasisResNetCifar', 'SharedBasisMobileNetV2',
    'SharedBasisDenseNet', 'SharedBasisDenseNetCifar', 'SharedBasisResNeXt',
    'SharedBasisResNeXtCifar', 'TiedBottleneck', 'TiedSplitConv',
    'TiedResNet', 'TiedResNeXt', 'TiedSEResNet', 'SEResNetTiedSE',
    'EfficientNetTiedSE', 'TiedResNeSt', 'TiedResNeStBottleneck',
    'TiedSplitAttentionConv2d', 'GroupedTBC'
]
