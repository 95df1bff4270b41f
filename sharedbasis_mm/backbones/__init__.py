from .shared_basis_mobilenet_v2 import SharedBasisMobileNetV2
from .shared_basis_resnet import SharedBasisResNet, SharedBasisResNetCifar

__all__ = [
    'SharedBasisResNet', 'SharedBasisResNetCifar', 'SharedBasisMobileNetV2'
]
