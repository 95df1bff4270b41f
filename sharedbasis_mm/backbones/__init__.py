from .resnet_cifar import ZeroPadResNet_CIFAR
from .shared_basis_densenet import (SharedBasisDenseNet,
                                    SharedBasisDenseNet_CIFAR,
                                    SharedBasisDenseNetCifar)
from .shared_basis_mobilenet_v2 import SharedBasisMobileNetV2
from .shared_basis_resnet import (SharedBasisResNet, SharedBasisResNet_CIFAR,
                                  SharedBasisResNetCifar)
from .shared_basis_resnext import (SharedBasisResNeXt,
                                   SharedBasisResNeXt_CIFAR,
                                   SharedBasisResNeXtCifar)
from .tied_resnet import (TiedBottleneck, TiedResNet, TiedResNeXt,
                          TiedSEResNet, TiedSplitConv)
from .tied_resnest import (GroupedTBC, TiedResNeSt, TiedResNeStBottleneck,
                           TiedSplitAttentionConv2d)
from .tied_se_backbones import EfficientNetTiedSE, SEResNetTiedSE

# SharedBasisResNetCifar, SharedBasisDenseNetCifar and
# SharedBasisResNeXtCifar are the deprecated aliases of the *_CIFAR classes.
__all__ = [
    'SharedBasisResNet', 'SharedBasisResNet_CIFAR', 'SharedBasisMobileNetV2',
    'SharedBasisDenseNet', 'SharedBasisDenseNet_CIFAR', 'SharedBasisResNeXt',
    'SharedBasisResNeXt_CIFAR', 'SharedBasisResNetCifar',
    'SharedBasisDenseNetCifar', 'SharedBasisResNeXtCifar', 'TiedBottleneck',
    'TiedSplitConv', 'TiedResNet', 'TiedResNeXt', 'TiedSEResNet',
    'SEResNetTiedSE', 'EfficientNetTiedSE', 'TiedResNeSt',
    'TiedResNeStBottleneck', 'TiedSplitAttentionConv2d', 'GroupedTBC',
    'ZeroPadResNet_CIFAR'
]
