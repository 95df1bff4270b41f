"""Model-level fusion of shared-basis layers for inference."""
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, fuse_conv_bn

from .layers import BasisConv2d, SharedBasisConv2d, find_shared_bases


def fuse_shared_basis(model: nn.Module) -> nn.Module:
    """Replace every shared-basis layer of a model by a plain convolution.

    Each :class:`SharedBasisConv2d` (basis -> BN -> coefficients) becomes one
    ``nn.Conv2d`` with bias, and each bare :class:`BasisConv2d` a
    ``nn.Conv2d`` holding its basis; the shared bases, which no layer uses
    any more, are unregistered from the modules owning them (the residual
    groups). The fused model computes what the original computes in eval
    mode and holds no shared parameter. The model is changed in place and
    returned.
    """
    bases = {id(basis) for basis in find_shared_bases(model).values()}
    _replace_shared_basis_layers(model)
    for module in model.modules():
        for name, param in list(module.named_parameters(recurse=False)):
            if id(param) in bases:
                delattr(module, name)
    return model


def _replace_shared_basis_layers(model: nn.Module) -> None:
    for name, child in list(model.named_children()):
        if isinstance(child, (SharedBasisConv2d, BasisConv2d)):
            setattr(model, name, child.fuse())
        else:
            _replace_shared_basis_layers(child)


def check_conv_bn_order(model: nn.Module) -> None:
    """Raise a ValueError where folding BN into the conv before it is wrong.

    mmcv's :func:`~mmcv.cnn.fuse_conv_bn` folds a BatchNorm into the
    ``nn.Conv2d`` registered just before it among its siblings. That is the
    data flow of mmdet's and mmpretrain's ResNet blocks, of ``nn.Sequential``
    and of a ``ConvModule`` ordered conv -> norm, but not of a
    ``ConvModule`` whose norm does not directly follow its conv.
    """
    for name, module in model.named_modules():
        if isinstance(module, ConvModule) and module.with_norm:
            order = tuple(module.order)
            if order.index('norm') != order.index('conv') + 1:
                raise ValueError(
                    f'cannot fold the norm of ConvModule {name!r} into its '
                    f'conv: order={order}; expected the norm right after '
                    f'the conv')


def fuse_model(model: nn.Module) -> nn.Module:
    """Fuse a model for inference: shared bases, then BatchNorms.

    :func:`fuse_shared_basis` first turns every shared-basis layer into a
    plain ``nn.Conv2d``; mmcv's :func:`~mmcv.cnn.fuse_conv_bn` then folds
    each BatchNorm into the convolution before it (bias included, so it is
    exact for the fused convolutions too) and leaves an ``nn.Identity`` in
    its place. The result computes what the model computes in eval mode;
    it is changed in place and returned.

    Raises:
        ValueError: If a ``ConvModule`` applies its norm other than right
            after its conv (see :func:`check_conv_bn_order`).
    """
    check_conv_bn_order(model)
    with torch.no_grad():
        fuse_conv_bn(fuse_shared_basis(model))
    return model
