"""ResNets whose residual groups share filter bases (Learning Deeply Shared
Filter Bases).

In every residual group (stage), the first block stays a plain block, as in
the paper's models, and the blocks after it share filter bases. What they
share is the block-config argument ``basis_cfg`` of the backbone, passed
through to the block class, which checks it (as mmdet passes ``dcn``):

- BasicBlock ResNets (depth 18, 34 and the CIFAR depths),
  ``basis_cfg=dict(shared_rank=s, unique_rank=u, num_bases=1,
  norm_cfg='norm_cfg')``: each block's two 3 x 3 convolutions are
  :class:`SharedBasisConv2d` layers (basis -> norm -> 1 x 1 coefficients) on
  one basis of the group (``num_bases=1``) or on two, one for the first and
  one for the second convolution of the blocks (``num_bases=2``, the paper's
  double-basis ‡ models). s and u are given for the first group and scale
  with its width: ResNet34-S48U1 has 48/96/192/384 shared and 1/2/4/8 unique
  elements.
- Bottleneck ResNets (depth 50, 101, 152), ``basis_cfg=dict(share=...)``:
  the convolutions named by ``share`` are :class:`BasisConv2d` layers whose
  whole weight is shared by the group; the block's own BN and next
  convolution act as the unshared coefficients. ``'conv2'`` is
  ResNet50-Shared, ``'conv2_conv3'`` ResNet50-Shared‡ as the authors' code
  builds it (``ResNet50_Shared``, whose released weights and the paper's ‡
  results come from it) and ``'all'`` ResNet50-Shared-All.
  ``'conv1_conv2'`` is the reading of the paper's sentence on Shared‡ ("the
  first two convolutions"), with the same parameter count. BatchNorm is
  never shared.

Each group (:class:`SharedBasisResLayer`) makes its bases (the block class'
``make_bases``), owns them (one Parameter and one state-dict key each,
``layer<i>.shared_basis`` for BasicBlocks with ``num_bases=1``, else
``layer<i>.shared_basis_<conv>``) and hands them to its blocks.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck
from mmdet.models.layers import ResLayer
from torch import Tensor

from ..layers import (BasisConv2d, ConvGeometry, SharedBasisConv2d,
                      SharedBasisSequential, SwitchToDeployMixin,
                      check_basis_conv_cfg, check_basis_norm_groups,
                      make_filter_basis)
from ..registry import MODELS
from ..utils.deprecation import register_deprecated_alias, warn_deprecated
from ..utils.validation import check_bool, check_choice, check_int
from .base_resnet import BaseResNet, DropPathMixin

SHARE_MODES = {
    'conv2': ('conv2', ),
    'conv1_conv2': ('conv1', 'conv2'),
    'conv2_conv3': ('conv2', 'conv3'),
    'all': ('conv1', 'conv2', 'conv3'),
}
# The sharing arguments SharedBasisResNet took before basis_cfg, by their
# basis_cfg key.
DEPRECATED_SHARING_ARGS = dict(
    shared_rank='shared_rank',
    unique_rank='unique_rank',
    num_bases='num_bases',
    basis_norm_cfg='norm_cfg',
    share='share')

class SharingBlockMixin:
    """Mixin of a residual block that can share its group's filter bases.

    The block takes its sharing arguments as one block config,
    ``basis_cfg`` (None for the plain block), checked by its class
    (:meth:`check_basis_cfg`, the keys of :attr:`basis_cfg_defaults`), and
    the group's bases, ``bases``: the group makes them with
    :meth:`make_bases`, owns them and hands them to every sharing block,
    which uses them in :meth:`share_bases`.

    Args:
        basis_cfg (dict, optional): The sharing arguments; None for the
            plain block. Defaults to None.
        bases (dict[str, nn.Parameter], optional): The group's bases, by
            the names of :meth:`basis_names`; required with ``basis_cfg``.
        **kwargs: The arguments of the block.
    """

    basis_cfg_defaults: Dict = {}

    def __init__(self,
                 *args,
                 basis_cfg: Optional[Dict] = None,
                 bases: Optional[Dict[str, nn.Parameter]] = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if basis_cfg is None:
            return
        owner = type(self).__name__
        cfg = self.check_basis_cfg(basis_cfg, owner)
        missing = [n for n in self.basis_names(cfg) if n not in (bases or {})]
        if missing:
            raise ValueError(
                f'{owner}: a block sharing filter bases uses those of its '
                f'group; expected bases with {missing}, made by '
                f'{owner}.make_bases and owned by the group '
                f'(SharedBasisResLayer)')
        self.share_bases(cfg, bases, owner, **kwargs)

    @classmethod
    def check_basis_cfg(cls, basis_cfg: Optional[Dict], owner: str) -> Dict:
        """``basis_cfg`` with the defaults; raise unless it is a dict (or
        None) of the keys of :attr:`basis_cfg_defaults` only. Subclasses
        check the values, naming them ``basis_cfg.<key>``."""
        if basis_cfg is not None and not isinstance(basis_cfg, dict):
            raise TypeError(f'{owner}: basis_cfg must be a dict of the '
                            f'sharing arguments of {cls.__name__} (or '
                            f'None), got basis_cfg={basis_cfg!r}')
        keys = sorted(cls.basis_cfg_defaults)
        unknown = sorted(set(basis_cfg or {}) - set(keys))
        if unknown:
            given = ', '.join(f'basis_cfg.{k}={basis_cfg[k]!r}'
                              for k in unknown)
            raise ValueError(f'{owner}: {given} given, which the blocks '
                             f'({cls.__name__}) do not take; expected '
                             f'basis_cfg keys among {keys}')
        return {**cls.basis_cfg_defaults, **(basis_cfg or {})}

    @classmethod
    def scale_basis_cfg(cls, basis_cfg: Dict, scale: int) -> Dict:
        """The ``basis_cfg`` of a group ``scale`` times as wide as the
        first; the same by default."""
        return basis_cfg

    @classmethod
    def basis_names(cls, basis_cfg: Dict) -> Sequence[str]:
        """The names of the group's bases that a block uses."""
        raise NotImplementedError

    @classmethod
    def make_bases(cls, basis_cfg: Dict, planes: int,
                   **kwargs) -> Dict[str, nn.Parameter]:
        """The bases of a group of sharing blocks of ``planes``, by name
        (``kwargs``: the other arguments of the blocks)."""
        raise NotImplementedError

    def share_bases(self, basis_cfg: Dict, bases: Dict[str, nn.Parameter],
                    owner: str, **kwargs) -> None:
        """Put the group's ``bases`` in the block's convolutions
        (``kwargs``: the block's arguments)."""
        raise NotImplementedError


class SharedBasisBasicBlock(SharingBlockMixin, DropPathMixin, BasicBlock):
    """A BasicBlock whose two 3 x 3 convolutions share filter bases.

    With ``basis_cfg=None`` it is mmdet's plain ``BasicBlock``. Its
    ``basis_cfg`` keys (the defaults fill those not given):

    - ``shared_rank`` (int): shared elements of each basis. Required.
    - ``unique_rank`` (int): elements unique to each convolution.
      Defaults to 1.
    - ``num_bases`` (int): 1 (both convolutions on one basis) or 2 (one
      basis each). Defaults to 1.
    - ``norm_cfg`` (dict | str | None): the norm over each convolution's
      basis responses: a norm config, None for none, or ``'norm_cfg'`` for
      the block's ``norm_cfg``. Defaults to ``'norm_cfg'``.

    For a sharing block, ``conv_cfg`` can only be the plain convolution
    (see :func:`~sharedbasis_mm.layers.check_basis_conv_cfg`). The other
    arguments are those of :class:`SharingBlockMixin` and mmdet's
    ``BasicBlock``.
    """

    basis_cfg_defaults = dict(
        shared_rank=None, unique_rank=1, num_bases=1, norm_cfg='norm_cfg')

    def share_bases(self,
                    basis_cfg: Dict,
                    bases: Dict[str, nn.Parameter],
                    owner: str,
                    conv_cfg: Optional[Dict] = None,
                    norm_cfg: Dict = dict(type='BN'),
                    **kwargs) -> None:
        check_basis_conv_cfg(owner, conv_cfg)
        basis_norm_cfg = (
            norm_cfg
            if basis_cfg['norm_cfg'] == 'norm_cfg' else basis_cfg['norm_cfg'])
        rank = basis_cfg['shared_rank'] + basis_cfg['unique_rank']
        check_basis_norm_groups(
            basis_norm_cfg, rank,
            'basis_cfg.shared_rank + basis_cfg.unique_rank', owner)
        for conv_name, basis_name in zip(('conv1', 'conv2'),
                                         self.basis_names(basis_cfg)):
            conv = getattr(self, conv_name)
            setattr(
                self, conv_name,
                SharedBasisConv2d(
                    **ConvGeometry.of(conv)._asdict(),
                    unique_rank=basis_cfg['unique_rank'],
                    shared_basis=bases[basis_name],
                    norm_cfg=basis_norm_cfg,
                    conv_cfg=conv_cfg))

    @classmethod
    def check_basis_cfg(cls, basis_cfg: Optional[Dict], owner: str) -> Dict:
        cfg = super().check_basis_cfg(basis_cfg, owner)
        if cfg['shared_rank'] is None:
            raise ValueError(f'{owner}: basis_cfg.shared_rank is required '
                             f'(the shared elements of each basis of the '
                             f'first group), got basis_cfg={basis_cfg!r}')
        check_int('basis_cfg.shared_rank', cfg['shared_rank'], 1, owner=owner)
        check_int('basis_cfg.unique_rank', cfg['unique_rank'], 0, owner=owner)
        check_choice('basis_cfg.num_bases', cfg['num_bases'], (1, 2),
                     owner=owner)
        norm = cfg['norm_cfg']
        if norm != 'norm_cfg' and norm is not None and not isinstance(
                norm, dict):
            raise ValueError(f'{owner}: basis_cfg.norm_cfg must be a norm '
                             f'config dict, None (no norm) or "norm_cfg" '
                             f'(the norm_cfg of the blocks), got '
                             f'basis_cfg.norm_cfg={norm!r}')
        return cfg

    @classmethod
    def scale_basis_cfg(cls, basis_cfg: Dict, scale: int) -> Dict:
        """The ranks scale with the width."""
        return dict(
            basis_cfg,
            shared_rank=basis_cfg['shared_rank'] * scale,
            unique_rank=basis_cfg['unique_rank'] * scale)

    @classmethod
    def basis_names(cls, basis_cfg: Dict) -> Tuple[str, str]:
        """The group's names of the bases of conv1 and conv2."""
        if basis_cfg['num_bases'] == 1:
            return 'shared_basis', 'shared_basis'
        return 'shared_basis_conv1', 'shared_basis_conv2'

    @classmethod
    def make_bases(cls, basis_cfg: Dict, planes: int,
                   **kwargs) -> Dict[str, nn.Parameter]:
        owner = cls.__name__
        cfg = cls.check_basis_cfg(basis_cfg, owner)
        rank = cfg['shared_rank'] + cfg['unique_rank']
        if rank > 9 * planes:
            raise ValueError(
                f'{owner}: basis_cfg.shared_rank + basis_cfg.unique_rank='
                f'{rank} elements cannot fit a 3 x 3 basis over {planes} '
                f'channels; expected at most {9 * planes}')
        return {
            name: make_filter_basis(planes, cfg['shared_rank'], 3)
            for name in dict.fromkeys(cls.basis_names(cfg))
        }


class SharedBasisBottleneck(SharingBlockMixin, DropPathMixin, Bottleneck):
    """A Bottleneck whose convolutions named by ``basis_cfg['share']`` are
    shared bases.

    With ``basis_cfg=None`` it is mmdet's plain ``Bottleneck``. Its one
    ``basis_cfg`` key, ``share`` (str), names the shared convolutions: a
    key of :data:`SHARE_MODES`. Defaults to ``'conv2'``. The other arguments
    are those of :class:`SharingBlockMixin` and mmdet's ``Bottleneck``.
    """

    basis_cfg_defaults = dict(share='conv2')

    def share_bases(self, basis_cfg: Dict, bases: Dict[str, nn.Parameter],
                    owner: str, **kwargs) -> None:
        check_basis_conv_cfg(owner, self.conv_cfg)
        for name in SHARE_MODES[basis_cfg['share']]:
            setattr(
                self, name,
                BasisConv2d.like(
                    getattr(self, name), bases[f'shared_basis_{name}']))

    @classmethod
    def check_basis_cfg(cls, basis_cfg: Optional[Dict], owner: str) -> Dict:
        cfg = super().check_basis_cfg(basis_cfg, owner)
        check_choice('basis_cfg.share', cfg['share'], sorted(SHARE_MODES),
                     owner=owner)
        return cfg

    @classmethod
    def basis_names(cls, basis_cfg: Dict) -> Tuple[str, ...]:
        return tuple(f'shared_basis_{name}'
                     for name in SHARE_MODES[basis_cfg['share']])

    @classmethod
    def make_bases(cls, basis_cfg: Dict, planes: int,
                   **kwargs) -> Dict[str, nn.Parameter]:
        """The whole weight of each shared convolution."""
        cfg = cls.check_basis_cfg(basis_cfg, cls.__name__)
        width = planes * cls.expansion
        # (in_channels, out_channels, kernel_size) of each convolution
        shapes = dict(
            conv1=(width, planes, 1),
            conv2=(planes, planes, 3),
            conv3=(planes, width, 1))
        return {
            f'shared_basis_{name}': make_filter_basis(*shapes[name])
            for name in SHARE_MODES[cfg['share']]
        }


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
    """A residual group: a plain block with the downsample, and blocks
    sharing bases.

    The plain block, with its downsample, is built by mmdet's ``ResLayer``.
    The group makes the bases of the others (``block.make_bases``), owns
    them (one Parameter each, state-dict keys ``layer<i>.shared_basis`` for
    one basis per group, ``layer<i>.shared_basis_<conv>`` for one per
    convolution) and hands them to the blocks.

    Args:
        block (type): ``SharedBasisBasicBlock``, ``SharedBasisBottleneck`` or
            another block class with ``make_bases``.
        inplanes (int): Input channels of the group.
        planes (int): Planes of its blocks.
        num_blocks (int): Blocks in the group.
        basis_cfg (dict, optional): The sharing arguments of ``block``;
            None for plain blocks. Defaults to None.
        shortcut_type (str): ``'conv'`` (1 x 1 conv + BN downsample) or
            ``'pad'`` (:class:`ZeroPadShortcut`). Defaults to ``'conv'``.
        downsample_first (bool): As mmdet's ``ResLayer``: the plain block
            with the downsample first, then the sharing blocks (the paper's
            models); or, if False, the sharing blocks first, at the width of
            the input (``planes=inplanes``, as mmdet's ``ResLayer`` builds
            them), then the plain block downsampling. Defaults to True.
        **kwargs: The arguments of mmdet's ``ResLayer`` and of the blocks.
    """

    def __init__(self,
                 block: type,
                 inplanes: int,
                 planes: int,
                 num_blocks: int,
                 basis_cfg: Optional[Dict] = None,
                 shortcut_type: str = 'conv',
                 downsample_first: bool = True,
                 **kwargs) -> None:
        check_bool('downsample_first', downsample_first,
                   owner='SharedBasisResLayer')
        plain = ResLayer(block, inplanes, planes, 1, **kwargs)[0]
        if shortcut_type == 'pad' and plain.downsample is not None:
            plain.downsample = ZeroPadShortcut(
                kwargs.get('stride', 1), planes * block.expansion - inplanes)
        kwargs.pop('stride', None)
        kwargs.pop('avg_down', None)
        if downsample_first:
            inplanes = planes * block.expansion
        else:
            planes = inplanes
        bases = (
            block.make_bases(basis_cfg, planes, **kwargs)
            if basis_cfg is not None and num_blocks > 1 else {})
        sharing = [
            block(
                inplanes=inplanes,
                planes=planes,
                basis_cfg=basis_cfg,
                bases=bases,
                **kwargs) for _ in range(1, num_blocks)
        ]
        blocks = [plain, *sharing] if downsample_first else [*sharing, plain]
        super().__init__(*blocks, bases=bases)


@MODELS.register_module()
class SharedBasisResNet(SwitchToDeployMixin, BaseResNet):
    """ResNet with filter bases shared inside each residual group.

    The models of "Learning Deeply Shared Filter Bases for Efficient
    ConvNets", with the argument interface of mmdet's ``ResNet``
    (``out_indices``, ``frozen_stages``, ``norm_cfg``, ``norm_eval``,
    ``style``, ``with_cp``, ``zero_init_residual``, ``plugins``,
    ``init_cfg``, ...) and the training defaults of
    :class:`~sharedbasis_mm.backbones.base_resnet.BaseResNet`
    (``norm_eval=False``; ``zero_init_residual`` zeroes ``norm2`` of the
    BasicBlocks and ``norm3`` of the Bottlenecks, shared-basis blocks
    included). See the module docstring for what is shared.

    ``frozen_stages`` freezes whole residual groups; a basis is only shared
    inside one group, which owns it, so it is frozen with its group.

    The sharing arguments it took before ``basis_cfg`` (``shared_rank``,
    ``unique_rank``, ``num_bases``, ``basis_norm_cfg``, ``share``) still
    work, with a ``FutureWarning``: they fill the ``basis_cfg`` keys
    ``shared_rank``, ``unique_rank``, ``num_bases``, ``norm_cfg`` and
    ``share``.

    Args:
        depth (int): 18, 34 (BasicBlock) or 50, 101, 152 (Bottleneck).
        basis_cfg (dict, optional): The sharing arguments of the blocks,
            checked by their class: for the BasicBlock depths
            ``dict(shared_rank=s, unique_rank=1, num_bases=1,
            norm_cfg='norm_cfg')`` (s required; the ranks are those of the
            first group, scaled by each group's width, the s and u of
            ResNetL-SsUu; ``norm_cfg='norm_cfg'`` is the backbone's, so
            ``SyncBN``, ``GN`` or ``requires_grad=False`` reach the norm
            after each basis, None the ablation without it), for the
            Bottleneck depths ``dict(share='conv2')`` (``'conv2'`` Shared,
            ``'conv2_conv3'`` Shared‡ of the authors' code,
            ``'conv1_conv2'`` Shared‡ as the paper's sentence reads,
            ``'all'`` Shared-All). None for the defaults. Defaults to None.
        shortcut_type (str): ``'conv'`` or ``'pad'`` downsampling shortcuts.
            Defaults to ``'conv'``.
        deploy (bool): Build the inference structure of
            :meth:`switch_to_deploy` (plain convolutions with bias,
            BatchNorms folded away), into which a fused checkpoint loads.
            Defaults to False.
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
                 basis_cfg: Optional[Dict] = None,
                 shortcut_type: str = 'conv',
                 deploy: bool = False,
                 **kwargs) -> None:
        name = type(self).__name__
        self._check_depth(depth)
        basis_cfg = self._basis_cfg_of_deprecated_args(basis_cfg, kwargs)
        block = self.arch_settings[depth][0]
        owner = f'{name} (depth={depth})'
        self.basis_cfg = block.check_basis_cfg(basis_cfg, owner)
        check_choice('shortcut_type', shortcut_type, ('conv', 'pad'),
                     owner=name)
        check_basis_conv_cfg(name, kwargs.get('conv_cfg'))
        check_bool('deploy', deploy, owner=name)
        self.shortcut_type = shortcut_type
        super().__init__(depth, **kwargs)
        if deploy:
            self.switch_to_deploy()

    def _basis_cfg_of_deprecated_args(self, basis_cfg: Optional[Dict],
                                      kwargs: Dict) -> Optional[Dict]:
        """``basis_cfg`` with the deprecated sharing arguments in
        ``kwargs`` (taken out of it) filled in, each with a warning."""
        given = {
            old: kwargs.pop(old)
            for old in DEPRECATED_SHARING_ARGS if old in kwargs
        }
        if not given:
            return basis_cfg
        if basis_cfg is not None and not isinstance(basis_cfg, dict):
            return basis_cfg  # refused by the block class' check
        name = type(self).__name__
        for old in given:
            warn_deprecated(
                f'{name}({old}=...)',
                f'basis_cfg=dict({DEPRECATED_SHARING_ARGS[old]}=...)')
        return dict(
            basis_cfg or {},
            **{DEPRECATED_SHARING_ARGS[old]: v
               for old, v in given.items()})

    def make_res_layer(self, **kwargs) -> SharedBasisResLayer:
        scale = kwargs['planes'] // self.base_channels
        return SharedBasisResLayer(
            basis_cfg=self.block.scale_basis_cfg(self.basis_cfg, scale),
            shortcut_type=self.shortcut_type,
            **kwargs)


class CifarStemMixin:
    """The CIFAR stem of mmpretrain's ``ResNet_CIFAR`` for an mmdet-style
    ResNet: a 3 x 3 stride-1 convolution, its norm and ReLU, and no max
    pooling."""

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


@MODELS.register_module()
class SharedBasisResNet_CIFAR(CifarStemMixin, SharedBasisResNet):
    """:class:`SharedBasisResNet` with the CIFAR stem.

    A 3 x 3 stride-1 stem convolution and no max pooling, as mmpretrain's
    ``ResNet_CIFAR``. Besides depths 18 and 34 (four groups, 64 channels
    first), the three-group CIFAR ResNets of He et al. (depth 6n + 2:
    20, 32, 44, 56, 110) are built with ``num_stages=3``,
    ``base_channels=16``, ``strides=(1, 2, 2)``, ``dilations=(1, 1, 1)``,
    ``out_indices=(2, )`` and, as in the paper's code, ``shortcut_type='pad'``.
    ``deep_stem`` is refused, as by mmpretrain's ``ResNet_CIFAR``: the CIFAR
    stem is one convolution. Registered before as ``SharedBasisResNetCifar``
    (deprecated).
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


SharedBasisResNetCifar = register_deprecated_alias(MODELS,
                                                   'SharedBasisResNetCifar',
                                                   SharedBasisResNet_CIFAR)
