"""Model-level fusion of shared-basis layers for inference."""
import torch.nn as nn

from .layers import BasisConv2d, SharedBasisConv2d


def fuse_shared_basis(model: nn.Module) -> nn.Module:
    """Replace every shared-basis layer of a model by a plain convolution.

    Each :class:`SharedBasisConv2d` (basis -> BN -> coefficients) becomes one
    ``nn.Conv2d`` with bias, and each bare :class:`BasisConv2d` a
    ``nn.Conv2d`` holding its basis. The fused model computes what the
    original computes in eval mode; it holds no shared parameter any more.
    The model is changed in place and returned.
    """
    for name, child in list(model.named_children()):
        if isinstance(child, (SharedBasisConv2d, BasisConv2d)):
            setattr(model, name, child.fuse())
        else:
            fuse_shared_basis(child)
    return model
