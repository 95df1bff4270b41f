"""Fusion for inference: shared-basis layers, tied layers and BatchNorms
folded into plain convolutions."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, fuse_conv_bn
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from .orthogonality import find_shared_bases
from .shared_basis import BasisConv2d, SharedBasisConv2d


def batch_norm_scale_shift(norm: nn.Module) -> Tuple[Tensor, Tensor]:
    """The per-channel ``(scale, shift)`` of a BatchNorm in eval mode.

    ``norm(x) == x * scale + shift`` channel-wise, with its running
    statistics.
    """
    if not isinstance(norm, _BatchNorm):
        raise TypeError(f'only a BatchNorm folds into a convolution, got '
                        f'{type(norm).__name__}')
    if norm.running_var is None:
        raise ValueError(f'{type(norm).__name__} has no running statistics '
                         f'(track_running_stats=False) to fold into a '
                         f'convolution')
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -norm.running_mean * scale
    if norm.bias is not None:
        shift = shift + norm.bias
    return scale, shift


def fold_batch_norm(weight: Tensor, bias: Optional[Tensor],
                    norm: Optional[nn.Module]) -> Tuple[Tensor, Tensor]:
    """The ``(weight, bias)`` of a layer with the BatchNorm after it folded
    in: ``norm(layer(x))`` in eval mode, whose output channels are the first
    dimension of ``weight``. A missing ``bias`` is zero; without a norm the
    weight is returned as it is."""
    if bias is None:
        bias = weight.new_zeros(weight.shape[0])
    if norm is None:
        return weight, bias
    scale, shift = batch_norm_scale_shift(norm)
    return (weight * scale.reshape(-1, *[1] * (weight.dim() - 1)),
            bias * scale + shift)


@torch.no_grad()
def load_weight_bias(layer: nn.Module, weight: Tensor,
                     bias: Tensor) -> nn.Module:
    """``layer`` on the device of ``weight``, holding ``weight`` and (where
    it has a bias) ``bias``."""
    layer.to(weight.device)
    layer.weight.copy_(weight)
    if layer.bias is not None:
        layer.bias.copy_(bias)
    return layer


class NormFusable:
    """A layer that has a deploy form: plain ``nn`` layers computing it in
    eval mode, with the BatchNorm that follows it (its next sibling in the
    parent module, the order :func:`check_conv_bn_order` checks) folded in.
    :func:`fuse_tied` replaces it by :meth:`fuse`."""

    def fuse(self, norm: Optional[_BatchNorm] = None) -> nn.Module:
        """The deploy form of the layer followed by ``norm`` (None: no
        norm), computing ``norm(layer(x))`` in eval mode."""
        raise NotImplementedError


def fuse_tied(model: nn.Module) -> nn.Module:
    """Replace every tied layer of a model by its deploy form.

    Each :class:`NormFusable` layer (TBC, TGC, TFC and the tied 3 x 3 stage
    of the TiedBottleneck) becomes the plain layers of its :meth:`fuse`;
    a BatchNorm that directly follows it among its siblings is folded in
    and replaced by ``nn.Identity``. The model is changed in place and
    returned.
    """
    children = list(model.named_children())
    for i, (name, child) in enumerate(children):
        if isinstance(child, NormFusable):
            norm = None
            if i + 1 < len(children) and isinstance(children[i + 1][1],
                                                    _BatchNorm):
                norm_name, norm = children[i + 1]
                setattr(model, norm_name, nn.Identity())
            setattr(model, name, child.fuse(norm))
        elif not isinstance(child, _BatchNorm):
            fuse_tied(child)
    return model


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
    """Fuse a model for inference: shared bases, tied layers, then
    BatchNorms.

    :func:`fuse_shared_basis` first turns every shared-basis layer into a
    plain ``nn.Conv2d`` and :func:`fuse_tied` every tied layer into its
    deploy form (the norm after it folded in); mmcv's
    :func:`~mmcv.cnn.fuse_conv_bn` then folds each BatchNorm into the
    convolution before it (bias included, so it is exact for the fused
    convolutions too) and leaves an ``nn.Identity`` in its place. The result computes what the model computes in eval mode;
    it is changed in place and returned.

    Raises:
        ValueError: If a ``ConvModule`` applies its norm other than right
            after its conv (see :func:`check_conv_bn_order`).
    """
    check_conv_bn_order(model)
    with torch.no_grad():
        fuse_conv_bn(fuse_tied(fuse_shared_basis(model)))
    return model


class SwitchToDeployMixin:
    """Mixin of a backbone: :meth:`switch_to_deploy` fuses it for inference,
    as mmpretrain's re-parameterised backbones (``RepVGG``) do; the
    backbone's ``deploy=True`` builds it fused."""

    deploy = False

    def switch_to_deploy(self) -> None:
        """Fuse the backbone in place (:func:`fuse_model`): it then computes
        what it computed in eval mode, with plain convolutions only, and
        loads fused checkpoints. A second call does nothing."""
        if not self.deploy:
            fuse_model(self)
            self.deploy = True
