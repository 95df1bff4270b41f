"""ResNets whose residual groups share filter bases (Learning Deeply Shared Filter Bases).

In every residual group (stage), the first block stays a plain block, as in
the paper's models, and the blocks after it share filter bases:

- BasicBlock ResNets (depth 18, 34 and the CIFAR depths): each block's two
  3 x 3 convolutions are :class:`SharedBasisConv2d` layers (basis -> norm ->
  1 x 1 coefficients) on one basis of the group (``num_bases=1``) or on two,
  one for the first and one for the second convolution of the blocks
  (``num_bases=2``, the paper's double-basis ‡ models). ``shared_rank`` s and
  ``unique_rank`` u are given for the first group and scale with its width:
  ResNet34-S48U1 has 48/96/192/384 shared and 1/2/4/8 unique elements.
- Bottleneck ResNets (depth 50, 101, 152): the convolutions named by
  ``share`` are :class:`BasisConv2d` layers whose whole weight is shared by
  the group; the block's own BN and next convolution act as the unshared
  coefficients. ``'conv2'`` is ResNet50-Shared, ``'conv2_conv3'``
  ResNet50-Shared‡ as the authors' code builds it (``ResNet50_Shared``,
  whose released weights and the paper's ‡ results come from it) and
  ``'all'`` ResNet50-Shared-All. ``'conv1_conv2'`` is the reading of the
  paper's sentence on Shared‡ ("the first two convolutions"), with the same
  parameter count. BatchNorm is never shared.

Each group (:class:`SharedBasisResLayer`) owns its bases: one Parameter and
one state-dict key each, ``layer<i>.shared_basis`` (BasicBlock,
``num_bases=1``) or ``layer<i>.shared_basis_<conv>``.
"""
from typing import Dict, Optional, Sequence, Tuple, Union

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck
from mmdet.models.layers import ResLayer
from torch import Tensor

from ..deploy import fuse_model
from ..layers import (BasisConv2d, SharedBasisConv2d, SharedBasisSequential,
                      check_basis_conv_cfg)
from ..registry import MODELS
from .base_resnet import BaseResNet

SHARE_MODES = {
    'conv2': ('conv2', ),
    'conv1_conv2': ('conv1', 'conv2'),
    'conv2_conv3': ('conv2', 'conv3'),
    'all': ('conv1', 'conv2', 'conv3'),
}


class SharedBasisBasicBlock(BasicBlock):
    """A BasicBlock whose two 3 x 3 convolutions share filter bases.

    With ``shared_rank=0`` it is mmdet's plain ``BasicBlock``. Built without
    ``bases``, the block creates them (its convolutions register them);
    :attr:`basis_layers` names them for a group to own.

    Args:
        shared_rank (int): Shared elements of each basis. 0 for a plain
            block. Defaults to 0.
        unique_rank (int): Elements unique to each convolution.
            Defaults to 0.
        num_bases (int): 1 (both convolutions on one basis) or 2 (one basis
            each). Defaults to 1.
        basis_norm_cfg (dict | str, optional): Norm over each convolution's
            basis responses: a norm config, None for none, or
            ``'norm_cfg'`` for the block's ``norm_cfg``.
            Defaults to ``'norm_cfg'``.
        bases (dict[str, nn.Parameter], optional): The bases of the group,
            by the names of :attr:`basis_layers`; created if None.
        conv_cfg (dict, optional): As mmdet's ``BasicBlock``; for a sharing
            block, only the plain convolution (see
            :func:`~sharedbasis_mm.layers.check_basis_conv_cfg`).
        norm_cfg (dict): As mmdet's ``BasicBlock``.
            Defaults to ``dict(type='BN')``.
        **kwargs: The other arguments of mmdet's ``BasicBlock``.
    """

    def __init__(self,
                 *args,
                 shared_rank: int = 0,
                 unique_rank: int = 0,
                 num_bases: int = 1,
                 basis_norm_cfg: Union[Dict, str, None] = 'norm_cfg',
                 bases: Optional[Dict[str, nn.Parameter]] = None,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN'),
                 **kwargs) -> None:
        super().__init__(
            *args, conv_cfg=conv_cfg, norm_cfg=norm_cfg, **kwargs)
        self.num_bases = num_bases
        if shared_rank == 0:
            return
        check_basis_conv_cfg(type(self).__name__, conv_cfg)
        basis_norm_cfg = resolve_basis_norm_cfg(type(self).__name__,
                                                basis_norm_cfg, norm_cfg)
        for conv_name, basis_name in zip(('conv1', 'conv2'),
                                         self._basis_names()):
            conv = getattr(self, conv_name)
            basis = bases[basis_name] if bases else None
            if basis is None and conv_name == 'conv2' and num_bases == 1:
                basis = self.conv1.shared_basis
            setattr(
                self, conv_name,
                SharedBasisConv2d(
                    conv.in_channels,
                    conv.out_channels,
                    conv.kernel_size,
                    stride=conv.stride,
                    padding=conv.padding,
                    dilation=conv.dilation,
                    rank=shared_rank + unique_rank,
                    unique_rank=unique_rank,
                    shared_basis=basis,
                    norm_cfg=basis_norm_cfg,
                    conv_cfg=conv_cfg))

    def _basis_names(self) -> Tuple[str, str]:
        """The group's names of the bases of conv1 and conv2."""
        if self.num_bases == 1:
            return 'shared_basis', 'shared_basis'
        return 'shared_basis_conv1', 'shared_basis_conv2'

    @property
    def basis_layers(self) -> Dict[str, BasisConv2d]:
        """For each distinct basis, by its name in the group, the basis
        convolution using it first."""
        layers: Dict[str, BasisConv2d] = {}
        for conv_name, basis_name in zip(('conv1', 'conv2'),
                                         self._basis_names()):
            layers.setdefault(basis_name, getattr(self, conv_name).basis)
        return layers


class SharedBasisBottleneck(Bottleneck):
    """A Bottleneck whose convolutions named in ``share`` are shared bases.

    With ``share=()`` it is mmdet's plain ``Bottleneck``. Built without
    ``bases``, the block creates them (its convolutions register them);
    :attr:`basis_layers` names them for a group to own.

    Args:
        share (Sequence[str]): Names of the shared convolutions, among
            ``'conv1'``, ``'conv2'``, ``'conv3'``. Defaults to ().
        bases (dict[str, nn.Parameter], optional): The group's bases by the
            names of :attr:`basis_layers` (``shared_basis_<conv>``);
            created if None.
        **kwargs: The arguments of mmdet's ``Bottleneck``.
    """

    def __init__(self,
                 *args,
                 share: Sequence[str] = (),
                 bases: Optional[Dict[str, nn.Parameter]] = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if 'conv2' in share and self.with_dcn:
            raise ValueError('SharedBasisResNet: conv2 cannot be both a '
                             'shared basis and a deformable convolution, '
                             f'and every share mode {sorted(SHARE_MODES)} '
                             'shares conv2; use dcn=None')
        if share:
            check_basis_conv_cfg(type(self).__name__, self.conv_cfg)
        for name in share:
            basis = bases[f'shared_basis_{name}'] if bases else None
            setattr(self, name, BasisConv2d.like(getattr(self, name), basis))

    @property
    def basis_layers(self) -> Dict[str, BasisConv2d]:
        """The shared convolutions, by the names of their bases in the
        group."""
        return {
            f'shared_basis_{name}': conv
            for name, conv in self.named_children()
            if isinstance(conv, BasisConv2d)
        }


def resolve_basis_norm_cfg(owner: str, basis_norm_cfg: Union[Dict, str,
                                                             None],
                           norm_cfg: Dict) -> Optional[Dict]:
    """The norm config after each basis: ``norm_cfg`` for ``'norm_cfg'``."""
    if basis_norm_cfg == 'norm_cfg':
        return norm_cfg
    if basis_norm_cfg is not None and not isinstance(basis_norm_cfg, dict):
        raise ValueError(f'{owner}: basis_norm_cfg must be a norm config '
                         f'dict, None (no norm) or "norm_cfg" (the norm_cfg '
                         f'of the backbone), got '
                         f'basis_norm_cfg={basis_norm_cfg!r}')
    return basis_norm_cfg


class ZeroPadShortcut(nn.Module):
    """The parameter-free shortcut of CIFAR ResNets ("option A").

    Subsamples by ``stride`` and zero-pads the new channels.
    """

    def __init__(self, stride: int, extra_channels: int) -> None:
        super().__init__()
        self.stride = stride
        self.extra_channels = extra_channels

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        half = self.extra_channels // 2
        return F.pad(x, (0, 0, 0, 0, half, self.extra_channels - half))


class SharedBasisResLayer(SharedBasisSequential):
    """A residual group: a plain first block, then blocks sharing bases.

    The first block, with its downsample, is built by mmdet's ``ResLayer``;
    the second creates the group's bases, which the group then owns (one
    Parameter each, state-dict keys ``layer<i>.shared_basis`` for one basis
    per group, ``layer<i>.shared_basis_<conv>`` for one per convolution)
    and hands to the blocks after it.

    Args:
        block (type): ``SharedBasisBasicBlock`` or ``SharedBasisBottleneck``.
        inplanes (int): Input channels of the group.
        planes (int): Planes of its blocks.
        num_blocks (int): Blocks in the group.
        sharing (dict): The sharing arguments of ``block``.
        shortcut_type (str): ``'conv'`` (1 x 1 conv + BN downsample) or
            ``'pad'`` (:class:`ZeroPadShortcut`). Defaults to ``'conv'``.
        **kwargs: The arguments of mmdet's ``ResLayer`` and of the blocks.
    """

    def __init__(self,
                 block: type,
                 inplanes: int,
                 planes: int,
                 num_blocks: int,
                 sharing: Dict,
                 shortcut_type: str = 'conv',
                 **kwargs) -> None:
        first = ResLayer(block, inplanes, planes, 1, **kwargs)[0]
        if shortcut_type == 'pad' and first.downsample is not None:
            first.downsample = ZeroPadShortcut(
                kwargs.get('stride', 1), planes * block.expansion - inplanes)
        kwargs.pop('stride', None)
        kwargs.pop('avg_down', None)
        kwargs.pop('downsample_first', None)
        blocks = [first]
        bases = None
        for _ in range(1, num_blocks):
            blocks.append(
                block(
                    inplanes=planes * block.expansion,
                    planes=planes,
                    bases=bases,
                    **sharing,
                    **kwargs))
            bases = {
                name: layer.shared_basis
                for name, layer in blocks[1].basis_layers.items()
            }
        super().__init__(*blocks)
        if num_blocks > 1:
            for name, layer in blocks[1].basis_layers.items():
                self.own_basis(name, layer)


@MODELS.register_module()
class SharedBasisResNet(BaseResNet):
    """ResNet with filter bases shared inside each residual group.

    The models of "Learning Deeply Shared Filter Bases for Efficient
    ConvNets" (Learning Deeply Shared Filter Bases), with the argument interface of mmdet's
    ``ResNet`` (``out_indices``, ``frozen_stages``, ``norm_cfg``,
    ``norm_eval``, ``style``, ``with_cp``, ``zero_init_residual``,
    ``plugins``, ``init_cfg``, ...) and the training defaults of
    :class:`~sharedbasis_mm.backbones.base_resnet.BaseResNet`
    (``norm_eval=False``; ``zero_init_residual`` zeroes ``norm2`` of the
    BasicBlocks and ``norm3`` of the Bottlenecks, shared-basis blocks
    included). See the module docstring for what is shared. The arguments
    of one block family (``shared_rank``, ``unique_rank``, ``num_bases``,
    ``basis_norm_cfg`` for depths 18 and 34; ``share`` for 50, 101 and 152)
    given with a depth of the other raise a ValueError.

    ``frozen_stages`` freezes whole residual groups; a basis is only shared
    inside one group, which owns it, so it is frozen with its group.

    Args:
        depth (int): 18, 34 (BasicBlock) or 50, 101, 152 (Bottleneck).
        shared_rank (int, optional): BasicBlock depths: shared elements of
            each basis in the first group, scaled by each group's width
            (s in ResNetL-SsUu). Required for them.
        unique_rank (int): BasicBlock depths: unique elements of each
            convolution in the first group, scaled likewise (u).
            Defaults to 1.
        num_bases (int): BasicBlock depths: bases per group, 1 or 2.
            Defaults to 1.
        basis_norm_cfg (dict | str, optional): BasicBlock depths: the
            unshared norm after each basis: ``'norm_cfg'`` for the
            backbone's ``norm_cfg`` (so ``SyncBN``, ``GN`` or
            ``requires_grad=False`` reach it), another norm config, or None
            for the ablation without it. Defaults to ``'norm_cfg'``.
        share (str): Bottleneck depths: ``'conv2'`` (Shared),
            ``'conv2_conv3'`` (Shared‡ of the authors' code),
            ``'conv1_conv2'`` (Shared‡ as the paper's sentence reads) or
            ``'all'`` (Shared-All). Defaults to ``'conv2'``.
        shortcut_type (str): ``'conv'`` or ``'pad'`` downsampling shortcuts.
            Defaults to ``'conv'``.
        deploy (bool): Build the inference structure of
            :func:`~sharedbasis_mm.deploy.fuse_model` (plain convolutions
            with bias, BatchNorms folded away), into which a fused
            checkpoint loads. Defaults to False.
        **kwargs: The arguments of mmdet's ``ResNet``.
    """

    arch_settings = {
        18: (SharedBasisBasicBlock, (2, 2, 2, 2)),
        34: (SharedBasisBasicBlock, (3, 4, 6, 3)),
        50: (SharedBasisBottleneck, (3, 4, 6, 3)),
        101: (SharedBasisBottleneck, (3, 4, 23, 3)),
        152: (SharedBasisBottleneck, (3, 8, 36, 3)),
    }

    def __init__(self,
                 depth: int,
                 shared_rank: Optional[int] = None,
                 unique_rank: Optional[int] = None,
                 num_bases: Optional[int] = None,
                 basis_norm_cfg: Union[Dict, str, None] = 'norm_cfg',
                 share: Optional[str] = None,
                 shortcut_type: str = 'conv',
                 deploy: bool = False,
                 **kwargs) -> None:
        self._check_depth(depth)
        if self.arch_settings[depth][0] is SharedBasisBottleneck:
            share = 'conv2' if share is None else share
        else:
            unique_rank = 1 if unique_rank is None else unique_rank
            num_bases = 1 if num_bases is None else num_bases
        self._check_args(depth, shared_rank, unique_rank, num_bases,
                         basis_norm_cfg, share, shortcut_type, kwargs)
        # Refuse a bad conv_cfg or basis_norm_cfg under the backbone's name;
        # the blocks resolve 'norm_cfg' to the backbone's norm_cfg.
        check_basis_conv_cfg(type(self).__name__, kwargs.get('conv_cfg'))
        resolve_basis_norm_cfg(type(self).__name__, basis_norm_cfg, None)
        self.shared_rank = shared_rank
        self.unique_rank = unique_rank
        self.num_bases = num_bases
        self.basis_norm_cfg = basis_norm_cfg
        self.share = share
        self.shortcut_type = shortcut_type
        self._base_channels = kwargs.get('base_channels', 64)
        super().__init__(depth, **kwargs)
        self.deploy = deploy
        if deploy:
            fuse_model(self)

    def _check_args(self, depth, shared_rank, unique_rank, num_bases,
                    basis_norm_cfg, share, shortcut_type, kwargs) -> None:
        """Raise a ValueError naming a bad argument, or an argument of the
        other block family, which this depth would silently ignore."""
        name = type(self).__name__
        block = self.arch_settings[depth][0]
        if shortcut_type not in ('conv', 'pad'):
            raise ValueError(f'{name}: unknown shortcut_type='
                             f'{shortcut_type!r}; expected "conv" or "pad"')
        if block is SharedBasisBottleneck:
            given = dict(
                shared_rank=shared_rank,
                unique_rank=unique_rank,
                num_bases=num_bases)
            unused = {k: v for k, v in given.items() if v is not None}
            if basis_norm_cfg != 'norm_cfg':  # None included
                unused['basis_norm_cfg'] = basis_norm_cfg
            if unused:
                listed = ', '.join(f'{k}={v!r}' for k, v in unused.items())
                raise ValueError(
                    f'{name}: {listed} given for depth={depth}, whose '
                    f'Bottleneck blocks share whole convolutions; these '
                    f'arguments apply to the BasicBlock depths (18, 34 and '
                    f'the CIFAR depths); expected share only')
            if share not in SHARE_MODES:
                raise ValueError(f'{name}: unknown share={share!r}; expected '
                                 f'one of {sorted(SHARE_MODES)}')
            return
        if share is not None:
            raise ValueError(
                f'{name}: share={share!r} given for depth={depth}, whose '
                f'BasicBlocks share bases set by shared_rank, unique_rank, '
                f'num_bases and basis_norm_cfg; share applies to the '
                f'Bottleneck depths (50, 101, 152)')
        if kwargs.get('dcn') is not None:
            raise ValueError(f'{name}: dcn={kwargs["dcn"]!r} given for '
                             f'depth={depth}; mmdet\'s BasicBlock has no '
                             f'deformable convolution; expected dcn=None')
        if not isinstance(shared_rank, int) or shared_rank < 1:
            raise ValueError(f'{name}: shared_rank must be an integer >= 1 '
                             f'for depth={depth}, got '
                             f'shared_rank={shared_rank!r}')
        if not isinstance(unique_rank, int) or unique_rank < 0:
            raise ValueError(f'{name}: unique_rank must be an integer >= 0, '
                             f'got unique_rank={unique_rank!r}')
        if num_bases not in (1, 2):
            raise ValueError(f'{name}: num_bases must be 1 or 2, got '
                             f'num_bases={num_bases!r}')
        base_channels = kwargs.get('base_channels', 64)
        rank = shared_rank + unique_rank
        if rank > 9 * base_channels:
            raise ValueError(
                f'{name}: shared_rank + unique_rank={rank} elements cannot '
                f'fit a 3 x 3 basis over base_channels={base_channels} '
                f'channels; expected at most {9 * base_channels}')

    def _sharing(self, planes: int) -> Dict:
        """The sharing arguments of the blocks of a group of ``planes``."""
        if self.block is SharedBasisBottleneck:
            return dict(share=SHARE_MODES[self.share])
        scale = planes // self._base_channels
        return dict(
            shared_rank=self.shared_rank * scale,
            unique_rank=self.unique_rank * scale,
            num_bases=self.num_bases,
            basis_norm_cfg=self.basis_norm_cfg)

    def make_res_layer(self, **kwargs) -> SharedBasisResLayer:
        return SharedBasisResLayer(
            sharing=self._sharing(kwargs['planes']),
            shortcut_type=self.shortcut_type,
            **kwargs)


@MODELS.register_module()
class SharedBasisResNetCifar(SharedBasisResNet):
    """:class:`SharedBasisResNet` with the CIFAR stem.

    A 3 x 3 stride-1 stem convolution and no max pooling, as mmpretrain's
    ``ResNet_CIFAR``. Besides depths 18 and 34 (four groups, 64 channels
    first), the three-group CIFAR ResNets of He et al. (depth 6n + 2:
    20, 32, 44, 56, 110) are built with ``num_stages=3``,
    ``base_channels=16``, ``strides=(1, 2, 2)``, ``dilations=(1, 1, 1)``,
    ``out_indices=(2, )`` and, as in the paper's code, ``shortcut_type='pad'``.
    ``deep_stem`` is refused, as by mmpretrain's ``ResNet_CIFAR``: the CIFAR
    stem is one convolution.
    """

    arch_settings = {
        **SharedBasisResNet.arch_settings,
        **{
            depth: (SharedBasisBasicBlock, ((depth - 2) // 6, ) * 3)
            for depth in (20, 32, 44, 56, 110)
        },
    }

    def __init__(self, depth: int, **kwargs) -> None:
        if kwargs.get('deep_stem'):
            raise ValueError(f'{type(self).__name__}: deep_stem='
                             f'{kwargs["deep_stem"]!r} is not supported by '
                             f'the CIFAR stem (one 3 x 3 convolution); '
                             f'expected deep_stem=False')
        super().__init__(depth, **kwargs)

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        self.conv1 = build_conv_layer(
            self.conv_cfg,
            in_channels,
            stem_channels,
            kernel_size=3,
            stride=1,
            padding=1,
            bias=False)
        self.norm1_name, norm1 = build_norm_layer(
            self.norm_cfg, stem_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
