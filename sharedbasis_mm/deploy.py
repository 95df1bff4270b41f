"""Model-level fusion of shared-basis layers for inference."""
import torch.nn as nn

from .layers import BasisConv2d, FilterBasis, SharedBasisConv2d


def fuse_shared_basis(model: nn.Module) -> nn.Module:
    """Replace every shared-basis layer of a model by a plain convolution.

    Each :class:`SharedBasisConv2d` (basis -> BN -> coefficients) becomes one
    ``nn.Conv2d`` with bias, and each bare :class:`BasisConv2d` a
    ``nn.Conv2d`` holding its basis; a :class:`FilterBasis` that a module
    holds itself, which no layer uses any more, is removed. The fused model
    computes what the original computes in eval mode and holds no shared
    parameter. The model is changed in place and returned.
    """
    for name, child in list(model.named_children()):
        if isinstance(child, (SharedBasisConv2d, BasisConv2d)):
            setattr(model, name, child.fuse())
        elif isinstance(child, FilterBasis):
            delattr(model, name)
        else:
            fuse_shared_basis(child)
    return model
