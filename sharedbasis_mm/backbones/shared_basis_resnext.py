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
from typing import Dict, Optional

import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmdet.models.backbones.resnext import Bottleneck as ResNeXtBottleneck
from mmdet.models.backbones.resnext import ResNeXt

from ..layers import BasisConv2d, check_basis_conv_cfg
from ..registry import MODELS
from .base_resnet import BaseResNet
from .shared_basis_resnet import SharedBasisResLayer, SharedBasisResNetCifar


class SharedBasisResNeXtBottleneck(ResNeXtBottleneck):
    """A ResNeXt bottleneck whose 3 x 3 convolution is on a grouped basis.

    With ``shared_rank=0`` it is mmdet's plain ResNeXt ``Bottleneck``.

    Args:
        shared_rank (int): Shared elements n of the basis; 0 for a plain
            block. Defaults to 0.
        unique_rank (int): Elements u of the block's own. Defaults to 0.
        shared_groups (int): Groups of the convolution with the shared
            elements. Defaults to 1.
        unique_groups (int): Groups of the convolution with the unique
            elements. Defaults to 1.
        bases (dict[str, nn.Parameter], optional): The group's basis under
            ``'shared_basis'``; if None, the block creates it (its conv2
            registers it until the group takes it over).
        **kwargs: The arguments of mmdet's ResNeXt ``Bottleneck``.
    """

    def __init__(self,
                 *args,
                 shared_rank: int = 0,
                 unique_rank: int = 0,
                 shared_groups: int = 1,
                 unique_groups: int = 1,
                 bases: Optional[Dict[str, nn.Parameter]] = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if shared_rank == 0:
            return
        if self.with_dcn:
            raise ValueError('SharedBasisResNeXt: conv2 cannot be both a '
                             'shared basis and a deformable convolution; '
                             'use dcn=None')
        if self.with_plugins and self.after_conv2_plugins:
            raise ValueError('SharedBasisResNeXt: plugins after conv2 of a '
                             'sharing block are not supported; place them '
                             'after conv1 or conv3')
        conv = self.conv2
        rank = shared_rank + unique_rank
        self.conv2 = BasisConv2d(
            conv.in_channels,
            rank,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            groups=shared_groups,
            unique_rank=unique_rank,
            unique_groups=unique_groups,
            shared_basis=bases['shared_basis'] if bases else None)
        self.norm2_name, norm2 = build_norm_layer(
            self.norm_cfg, rank, postfix=2)
        self.add_module(self.norm2_name, norm2)
        self.conv3 = build_conv_layer(
            self.conv_cfg,
            rank,
            self.planes * self.expansion,
            kernel_size=1,
            bias=False)

    @property
    def basis_layers(self) -> Dict[str, BasisConv2d]:
        """The shared convolution, by the name of its basis in the group."""
        if not isinstance(self.conv2, BasisConv2d):
            return {}
        return {'shared_basis': self.conv2}


@MODELS.register_module()
class SharedBasisResNeXt(ResNeXt, BaseResNet):
    """ResNeXt with a grouped filter basis shared inside each residual group.

    mmdet's ``ResNeXt`` (``groups``, ``base_width``, ``out_indices``,
    ``frozen_stages``, ``norm_cfg``, ``norm_eval``, ``style``, ``with_cp``,
    ``plugins``, ``init_cfg``, ...) whose blocks share bases as the module
    docstring says, so it serves mmdet's detectors as well as mmpretrain's
    classifiers, with the training defaults and checks of the project's
    ResNets (:class:`BaseResNet`: ``norm_eval=False``, ``frozen_stages=-1``,
    ``zero_init_residual`` on every block). ``frozen_stages`` freezes whole
    residual groups, bases included.

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
        **kwargs: The arguments of mmdet's ``ResNeXt``.
    """

    arch_settings = {
        50: (SharedBasisResNeXtBottleneck, (3, 4, 6, 3)),
        101: (SharedBasisResNeXtBottleneck, (3, 4, 23, 3)),
        152: (SharedBasisResNeXtBottleneck, (3, 8, 36, 3)),
    }

    def __init__(self,
                 depth: int,
                 shared_rank: int = 0,
                 unique_rank: int = 0,
                 shared_groups: int = 1,
                 unique_groups: int = 1,
                 **kwargs) -> None:
        name = type(self).__name__
        self._check_depth(depth)
        for arg, value, least in (('shared_rank', shared_rank, 0),
                                  ('unique_rank', unique_rank, 0),
                                  ('shared_groups', shared_groups, 1),
                                  ('unique_groups', unique_groups, 1)):
            if not isinstance(value, int) or value < least:
                raise ValueError(f'{name}: {arg} must be an integer >= '
                                 f'{least}, got {arg}={value!r}')
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

    def make_res_layer(self, **kwargs) -> SharedBasisResLayer:
        scale = kwargs['planes'] // self.base_channels
        sharing = dict(
            shared_rank=self.shared_rank * scale,
            unique_rank=self.unique_rank * scale,
            shared_groups=self.shared_groups,
            unique_groups=self.unique_groups * scale)
        return SharedBasisResLayer(
            sharing=sharing,
            groups=self.groups,
            base_width=self.base_width,
            base_channels=self.base_channels,
            **kwargs)


@MODELS.register_module()
class SharedBasisResNeXtCifar(SharedBasisResNeXt):
    """:class:`SharedBasisResNeXt` with the CIFAR stem.

    A 3 x 3 stride-1 stem convolution, BN and ReLU, and no max pooling, as
    :class:`SharedBasisResNetCifar`: the structure of the authors' CIFAR-100
    ``ResNext50_32x4d`` and ``ResNext50_32x4d_SingleShared``.
    """

    _make_stem_layer = SharedBasisResNetCifar._make_stem_layer
