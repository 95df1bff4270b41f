"""DenseNets whose dense blocks share filter bases.

The DenseNet121-S16U1 of "Learning Deeply Shared Filter Bases for Efficient
ConvNets" (Table 2). Each layer of a DenseNet-BC dense block computes
BN-ReLU-1x1 conv-BN-ReLU-3x3 conv; here the 3 x 3 convolution of every layer
of a dense block, the first one included, is a :class:`SharedBasisConv2d`:
``shared_rank`` elements of the dense block's basis (a Parameter of
:func:`make_filter_basis`, registered by the dense block) and
``unique_rank`` of the layer's own, a BN over their responses and 1 x 1
coefficients to ``growth_rate`` channels. The 1 x 1 convolution before it
gives every layer the same ``bn_size * growth_rate`` input channels, so one
basis serves the whole block (and could serve several blocks).
"""
from typing import Dict, Optional, Sequence

import torch.nn as nn
from mmpretrain.models.backbones import DenseNet

from ..layers import (ConvGeometry, SharedBasisConv2d, SwitchToDeployMixin,
                      make_filter_basis, register_bases)
from ..registry import MODELS
from ..utils.deprecation import register_deprecated_alias
from ..utils.validation import check_bool, check_int


@MODELS.register_module()
class SharedBasisDenseNet(SwitchToDeployMixin, DenseNet):
    """DenseNet with a filter basis shared inside each dense block.

    mmpretrain's ``DenseNet`` (``arch``, ``bn_size``, ``compression_factor``,
    ``out_indices``, ``frozen_stages``, ...) whose 3 x 3 convolutions share
    bases as the module docstring says. The dense block (``stages[i]``) that
    first uses a basis makes it, owns it (one ``stages.{i}.shared_basis``
    parameter) and hands it to its layers (and to later blocks of the same
    ``basis_indices``); ``frozen_stages`` freezes it with that block. It
    keeps its own sharing arguments: its one kind of layer needs no block
    config.

    Args:
        shared_rank (int): Shared elements n of each basis; 0 builds the
            plain DenseNet (the baselines of Table 2). Defaults to 0.
        unique_rank (int): Elements unique to each layer (u); needs
            ``shared_rank > 0``. Defaults to 0.
        basis_norm_cfg (dict, optional): The norm over each layer's basis
            responses; None for none. Defaults to ``dict(type='BN')``.
        basis_indices (Sequence[int], optional): For each dense block, the
            index of the basis it uses; blocks with equal indices share one
            basis. None gives each block its own, ``(0, 1, 2, 3)`` for four
            blocks, as the paper describes its models. The authors' code
            (``DenseNet121_SingleShared``) gives the fourth block the third
            one's basis, ``(0, 1, 2, 2)``, and holds an unused fourth basis
            that this class does not build. Defaults to None.
        transition_act (bool): Whether the transition layers between dense
            blocks apply the activation after their norm (BN-ReLU-conv-pool,
            as mmpretrain and DenseNet-BC). The authors' CIFAR code has none
            (BN-conv-pool). Defaults to True.
        deploy (bool): Build the inference structure of
            :meth:`switch_to_deploy` (the shared-basis layers fused, each
            BatchNorm after a convolution folded into it). Defaults to False.
        **kwargs: The arguments of mmpretrain's ``DenseNet``.
    """

    def __init__(self,
                 *args,
                 shared_rank: int = 0,
                 unique_rank: int = 0,
                 basis_norm_cfg: Optional[Dict] = dict(type='BN'),
                 basis_indices: Optional[Sequence[int]] = None,
                 transition_act: bool = True,
                 deploy: bool = False,
                 **kwargs) -> None:
        check_bool('deploy', deploy, owner=type(self).__name__)
        super().__init__(*args, **kwargs)
        self._check_args(shared_rank, unique_rank, basis_indices)
        self.shared_rank = shared_rank
        self.unique_rank = unique_rank
        self.transition_act = transition_act
        if not transition_act:
            for transition in self.transitions[:-1]:
                transition.act = nn.Identity()
        if shared_rank > 0:
            if basis_indices is None:
                basis_indices = range(self.num_stages)
            self.basis_indices = tuple(basis_indices)
            self._share_bases(basis_norm_cfg)
        # the layers built above are frozen like the rest
        self._freeze_stages()
        if deploy:
            self.switch_to_deploy()

    def _check_args(self, shared_rank: int, unique_rank: int,
                    basis_indices: Optional[Sequence[int]]) -> None:
        name = type(self).__name__
        check_int('shared_rank', shared_rank, 0, owner=name)
        check_int('unique_rank', unique_rank, 0, owner=name)
        if shared_rank == 0 and (unique_rank or basis_indices is not None):
            raise ValueError(
                f'{name}: unique_rank={unique_rank} and basis_indices='
                f'{basis_indices} need shared bases, but shared_rank=0 '
                f'builds the plain DenseNet; expected shared_rank > 0')
        if basis_indices is None:
            return
        if not isinstance(basis_indices, (tuple, list)) or len(
                basis_indices) != self.num_stages:
            raise ValueError(
                f'{name}: basis_indices must give one index in '
                f'[0, {self.num_stages}) per dense block '
                f'({self.num_stages}), got basis_indices={basis_indices!r}')
        for j, index in enumerate(basis_indices):
            check_int(f'basis_indices[{j}]', index, 0, self.num_stages - 1,
                      owner=name)

    def _share_bases(self, basis_norm_cfg: Optional[Dict]) -> None:
        """Turn every layer's 3 x 3 convolution into a basis convolution on
        the basis that the first dense block of its index makes and owns."""
        bases: Dict[int, nn.Parameter] = {}
        for stage, index in zip(self.stages, self.basis_indices):
            first_conv = stage.block[0].conv2
            if index not in bases:
                bases[index] = make_filter_basis(first_conv.in_channels,
                                                 self.shared_rank,
                                                 first_conv.kernel_size)
                register_bases(stage, dict(shared_basis=bases[index]))
            for layer in stage.block:
                layer.conv2 = SharedBasisConv2d(
                    **ConvGeometry.of(layer.conv2)._asdict(),
                    unique_rank=self.unique_rank,
                    shared_basis=bases[index],
                    norm_cfg=basis_norm_cfg)


@MODELS.register_module()
class SharedBasisDenseNet_CIFAR(SharedBasisDenseNet):
    """:class:`SharedBasisDenseNet` with the CIFAR stem of DenseNet-BC.

    The stem is one 3 x 3 stride-1 convolution to ``init_channels``
    (twice the growth rate for the standard archs), with no norm, activation
    or pooling: the first dense layer's BN-ReLU follows it. With
    ``transition_act=False`` it is the structure of the authors' CIFAR-100
    ``DenseNet121`` and ``DenseNet121_SingleShared``. Registered before as
    ``SharedBasisDenseNetCifar`` (deprecated).
    """

    def __init__(self,
                 *args,
                 in_channels: int = 3,
                 deploy: bool = False,
                 **kwargs) -> None:
        check_bool('deploy', deploy, owner=type(self).__name__)
        super().__init__(*args, in_channels=in_channels, **kwargs)
        self.stem = nn.Sequential(
            nn.Conv2d(
                in_channels,
                self.init_channels,
                kernel_size=3,
                padding=1,
                bias=False))
        if deploy:
            self.switch_to_deploy()

SharedBasisDenseNetCifar = register_deprecated_alias(
    MODELS, 'SharedBasisDenseNetCifar', SharedBasisDenseNet_CIFAR)
