"""ResNeXts whose residual groups share grouped filter bases.

The ResNeXt50-S64U4 of "Learning Deeply Shared Filter Bases for Efficient
ConvNets" (Table 2). As in the ResNets, the first block of every residual
group stays a plain ResNeXt bottleneck. In the blocks after it the grouped
3 x 3 convolution becomes a :class:`BasisConv2d` with R = n + u elements:
the n shared elements of the group's basis (a grouped one, with
``shared_groups`` groups, registered once by the group:
``layer{i}.shared_basis``), and u elements of the block's own, with
``unique_groups`` groups; the block's BN over the R responses, ReLU and its
1 x 1 ``conv3`` (R -> 4 x planes) act as the unshared coefficients. n, u and
the unique groups are given for the first group and scale with its width, as
the authors' code does: ResNeXt50-S64U4 has 64/128/256/512 shared elements
in 16 groups and 4/8/16/32 unique ones in 1/2/4/8 groups.
"""
import math
from typing import Dict, Optional, Tuple

import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmdet.models.backbones.resnext import Bottleneck as ResNeXtBottleneck
from mmdet.models.backbones.resnext import ResNeXt

from ..layers import (BasisConv2d, ConvGeometry, SwitchToDeployMixin,
                      check_basis_conv_cfg, make_filter_basis)
from ..registry import MODELS
from ..utils.deprecation import register_deprecated_alias
from ..utils.validation import check_bool, check_int, check_positive_int
from .base_resnet import BaseResNet, DropPathMixin
from .shared_basis_resnet import (CifarStemMixin, SharedBasisResLayer,
                                  SharingBlockMixin)


class SharedBasisResNeXtBottleneck(SharingBlockMixin, DropPathMixin,
                                   ResNeXtBottleneck):
    """A ResNeXt bottleneck whose 3 x 3 convolution is on a grouped basis.

    With ``basis_cfg=None`` it is mmdet's plain ResNeXt ``Bottleneck``. Its
    ``basis_cfg`` keys (the defaults fill those not given):

    - ``shared_rank`` (int): shared elements n of the basis. Required.
    - ``unique_rank`` (int): elements u of the block's own. Defaults to 0.
    - ``shared_groups`` (int): groups of the convolution with the shared
      elements. Defaults to 1.
    - ``unique_groups`` (int): groups of the convolution with the unique
      elements. Defaults to 1.

    The other arguments are those of :class:`SharingBlockMixin` and mmdet's
    ResNeXt ``Bottleneck``.
    """

    basis_cfg_defaults = dict(
        shared_rank=None, unique_rank=0, shared_groups=1, unique_groups=1)

    def share_bases(self, basis_cfg: Dict, bases: Dict[str, nn.Parameter],
                    owner: str, **kwargs) -> None:
        if self.with_plugins and self.after_conv2_plugins:
            raise ValueError(f'{owner}: plugins after conv2 of a sharing '
                             f'block are not supported; place them after '
                             f'conv1 or conv3')
        rank = basis_cfg['shared_rank'] + basis_cfg['unique_rank']
        self.conv2 = BasisConv2d(
            **ConvGeometry.of(self.conv2)._replace(
                out_channels=rank)._asdict(),
            groups=basis_cfg['shared_groups'],
            unique_rank=basis_cfg['unique_rank'],
            unique_groups=basis_cfg['unique_groups'],
            shared_basis=bases['shared_basis'])
        self.norm2_name, norm2 = build_norm_layer(
            self.norm_cfg, rank, postfix=2)
        self.add_module(self.norm2_name, norm2)
        self.conv3 = build_conv_layer(
            self.conv_cfg,
            rank,
            self.planes * self.expansion,
            kernel_size=1,
            bias=False)

    @classmethod
    def check_basis_cfg(cls, basis_cfg: Optional[Dict], owner: str) -> Dict:
        cfg = super().check_basis_cfg(basis_cfg, owner)
        check_positive_int('basis_cfg.shared_rank', cfg['shared_rank'],
                           owner=owner)
        check_int('basis_cfg.unique_rank', cfg['unique_rank'], 0, owner=owner)
        for key in ('shared_groups', 'unique_groups'):
            check_positive_int(f'basis_cfg.{key}', cfg[key], owner=owner)
        return cfg

    @classmethod
    def basis_names(cls, basis_cfg: Dict) -> Tuple[str]:
        return ('shared_basis', )

    @classmethod
    def make_bases(cls, basis_cfg: Dict, planes: int, groups: int = 1,
                   base_width: int = 4, base_channels: int = 64,
                   **kwargs) -> Dict[str, nn.Parameter]:
        """The grouped basis of a group of sharing blocks of ``planes``,
        over the width of their 3 x 3 convolution (as mmdet's ResNeXt
        ``Bottleneck`` computes it from ``groups``, ``base_width`` and
        ``base_channels``)."""
        cfg = cls.check_basis_cfg(basis_cfg, cls.__name__)
        width = planes if groups == 1 else math.floor(
            planes * base_width / base_channels) * groups
        return dict(
            shared_basis=make_filter_basis(
                width, cfg['shared_rank'], 3, groups=cfg['shared_groups']))


@MODELS.register_module()
class SharedBasisResNeXt(SwitchToDeployMixin, ResNeXt, BaseResNet):
    """ResNeXt with a grouped filter basis shared inside each residual group.

    mmdet's ``ResNeXt`` (``groups``, ``base_width``, ``out_indices``,
    ``frozen_stages``, ``norm_cfg``, ``norm_eval``, ``style``, ``with_cp``,
    ``plugins``, ``init_cfg``, ...) whose blocks share bases as the module
    docstring says, so it serves mmdet's detectors as well as mmpretrain's
    classifiers, with the training defaults and checks of the project's
    ResNets (:class:`BaseResNet`: ``norm_eval=False``, ``frozen_stages=-1``,
    ``zero_init_residual`` on every block). ``frozen_stages`` freezes whole
    residual groups, bases included. Its one block family takes its sharing
    arguments directly (the blocks get them, scaled, as ``basis_cfg``).

    Args:
        depth (int): 50, 101 or 152.
        shared_rank (int): Shared elements of the first group's basis,
            scaled by each group's width (the S of ResNeXt50-S64U4); 0
            builds the plain ResNeXt (the baseline of Table 2).
            Defaults to 0.
        unique_rank (int): Unique elements of each block in the first
            group, scaled likewise (U). Defaults to 0.
        shared_groups (int): Groups of the convolution with the shared
            elements, in every group. The authors' code uses
            ``shared_rank / 4``. Defaults to 1.
        unique_groups (int): Groups of the convolution with the unique
            elements in the first group, scaled like the ranks. The authors'
            code uses ``unique_rank / base_width``. Defaults to 1.
        deploy (bool): Build the inference structure of
            :meth:`switch_to_deploy`. Defaults to False.
        **kwargs: The arguments of mmdet's ``ResNeXt``.
    """

    arch_settings = {
        50: (SharedBasisResNeXtBottleneck, (3, 4, 6, 3)),
        101: (SharedBasisResNeXtBottleneck, (3, 4, 23, 3)),
        152: (SharedBasisResNeXtBottleneck, (3, 8, 36, 3)),
    }

    def __init__(self,
                 depth: int,
                 *,
                 shared_rank: int = 0,
                 unique_rank: int = 0,
                 shared_groups: int = 1,
                 unique_groups: int = 1,
                 deploy: bool = False,
                 **kwargs) -> None:
        name = type(self).__name__
        self._check_depth(depth)
        check_int('shared_rank', shared_rank, 0, owner=name)
        check_int('unique_rank', unique_rank, 0, owner=name)
        check_positive_int('shared_groups', shared_groups, owner=name)
        check_positive_int('unique_groups', unique_groups, owner=name)
        check_bool('deploy', deploy, owner=name)
        sharing_only = dict(
            unique_rank=(unique_rank, 0),
            shared_groups=(shared_groups, 1),
            unique_groups=(unique_groups, 1))
        for arg, (value, default) in sharing_only.items():
            if shared_rank == 0 and value != default:
                raise ValueError(f'{name}: {arg}={value} needs a shared '
                                 f'basis, but shared_rank=0 builds the plain '
                                 f'ResNeXt; expected shared_rank > 0 or '
                                 f'{arg}={default}')
        if shared_rank > 0:
            check_basis_conv_cfg(name, kwargs.get('conv_cfg'))
        self.shared_rank = shared_rank
        self.unique_rank = unique_rank
        self.shared_groups = shared_groups
        self.unique_groups = unique_groups
        super().__init__(depth=depth, **kwargs)
        if deploy:
            self.switch_to_deploy()

    def make_res_layer(self, **kwargs) -> SharedBasisResLayer:
        scale = kwargs['planes'] // self.base_channels
        basis_cfg = dict(
            shared_rank=self.shared_rank * scale,
            unique_rank=self.unique_rank * scale,
            shared_groups=self.shared_groups,
            unique_groups=self.unique_groups *
            scale) if self.shared_rank > 0 else None
        return SharedBasisResLayer(
            basis_cfg=basis_cfg,
            groups=self.groups,
            base_width=self.base_width,
            base_channels=self.base_channels,
            **kwargs)


@MODELS.register_module()
class SharedBasisResNeXt_CIFAR(CifarStemMixin, SharedBasisResNeXt):
    """:class:`SharedBasisResNeXt` with the CIFAR stem.

    A 3 x 3 stride-1 stem convolution, BN and ReLU, and no max pooling, as
    :class:`SharedBasisResNet_CIFAR`: the structure of the authors' CIFAR-100
    ``ResNext50_32x4d`` and ``ResNext50_32x4d_SingleShared``. Registered
    before as ``SharedBasisResNeXtCifar`` (deprecated).
    """


SharedBasisResNeXtCifar = register_deprecated_alias(
    MODELS, 'SharedBasisResNeXtCifar', SharedBasisResNeXt_CIFAR)
