"""The authors' ResNets (ImageNet, CIFAR-100, CIFAR-10) in
:class:`~sharedbasis_mm.backbones.SharedBasisResNet` and
:class:`~sharedbasis_mm.backbones.SharedBasisResNet_CIFAR`.

Their keys: the stem ``conv1``/``bn1``; in each group ``layer{i}``, a plain
first block (``conv1``, ``bn1``, ..., ``shortcut.0``/``shortcut.1``) and
sharing blocks. A BasicBlock sharing block has, per convolution ``k``, its
unique elements ``basis_conv{k}``, the norm ``basis_bn{k}`` and the
coefficients ``coeff_conv{k}``; a Bottleneck sharing block has its shared
convolutions as ``shared_basis`` (one basis) or ``shared_basis_1``,
``shared_basis_2`` (two). The group's bases are stored at the top, as
``shared_basis_{i}`` or ``shared_basis_{i}_{k}``, and again in each sharing
block.
"""
from typing import Iterator, List

import torch.nn as nn
from torch import Tensor

from ..backbones import SharedBasisResNet
from ..layers import BasisConv2d, SharedBasisConv2d
from .net_rl2 import (Entry, module_entries, register_net_rl2_mapping,
                      shared_first, shared_first_inputs)

CONVS = ('conv1', 'conv2', 'conv3')


def _group_bases(layer: nn.Sequential, name: str,
                 index: int) -> Iterator[Entry]:
    """The distinct bases of a group, each from all its copies."""
    bases: List[Tensor] = []
    for conv_name in CONVS:
        conv = getattr(layer[1], conv_name, None) if len(layer) > 1 else None
        if isinstance(conv, (SharedBasisConv2d, BasisConv2d)):
            basis = conv.shared_basis
            if basis is not None and all(basis is not b for b in bases):
                bases.append(basis)
    for k, basis in enumerate(bases, 1):
        suffix = '' if len(bases) == 1 else f'_{k}'
        copies = (f'shared_basis_{index}{suffix}.weight', ) + tuple(
            f'{name}.{j}.shared_basis{suffix}.weight'
            for j in range(1, len(layer)))
        yield Entry(basis, (copies, ))


def _factorized_conv(conv: SharedBasisConv2d, prefix: str,
                     k: int) -> Iterator[Entry]:
    """A BasicBlock convolution on a basis: unique elements, norm and
    coefficients (the shared elements come with the group)."""
    unique_rank = conv.basis.unique_rank
    if conv.basis.unique_weight is not None:
        yield Entry(conv.basis.unique_weight,
                    (f'{prefix}.basis_conv{k}.weight', ))
    if conv.norm is not None:
        for name, tensor in conv.norm.state_dict(keep_vars=True).items():
            fold = shared_first(unique_rank) if tensor.dim() == 1 else None
            yield Entry(tensor, (f'{prefix}.basis_bn{k}.{name}', ), fold)
    yield Entry(conv.coefficients.weight, (f'{prefix}.coeff_conv{k}.weight', ),
                shared_first_inputs(unique_rank))


@register_net_rl2_mapping('SharedBasisResNet',
                          'SharedBasisResNet_CIFAR',
                          head='fc')
def resnet_entries(backbone: SharedBasisResNet) -> Iterator[Entry]:
    """Their ``ResNet_SingleShared``, ``ResNet_DoubleShared``,
    ``ResNet_BottleneckSharedSingle`` and ``ResNet_BottleneckShared``."""
    yield from module_entries(backbone.conv1, 'conv1')
    yield from module_entries(backbone.norm1, 'bn1')
    for index, name in enumerate(backbone.res_layers, 1):
        layer = getattr(backbone, name)
        yield from _group_bases(layer, name, index)
        for j, block in enumerate(layer):
            prefix = f'{name}.{j}'
            for k, conv_name in enumerate(CONVS, 1):
                conv = getattr(block, conv_name, None)
                if conv is None:
                    continue
                if isinstance(conv, SharedBasisConv2d):
                    yield from _factorized_conv(conv, prefix, k)
                elif not isinstance(conv, BasisConv2d):
                    yield from module_entries(conv, f'{prefix}.{conv_name}')
                yield from module_entries(getattr(block, f'norm{k}'),
                                          f'{prefix}.bn{k}')
            if block.downsample is not None:
                yield from module_entries(block.downsample,
                                          f'{prefix}.shortcut')
