"""TiedResNeSt of Tied Block Convolution (Figure 4c, Table 1).

The backbone is mmdet's ResNet with ResNeSt's deep stem and average-pool
shortcut (``deep_stem=True, avg_down=True``, mmdet's ``ResNetV1d``), whose
blocks are mmdet's ResNeSt bottleneck with its split-attention module
(:class:`~mmdet.models.backbones.resnest.SplitAttentionConv2d`), on
:class:`~sharedbasis_mm.backbones.base_resnet.BaseResNet` as the tied
ResNets are (its argument checks, ``norm_eval=False`` and
``zero_init_residual`` on every ``norm3``). What the paper changes
("Tied backbones"):

- entry: the 1 x 1 convolution is a TBC with ``entry_blocks=2`` blocks.
- 3 x 3: the convolution of the split-attention module, a group convolution
  with ``radix * groups`` groups, becomes one TBC with ``split_blocks=2``
  blocks per group (:class:`GroupedTBC`): each radix split keeps its own
  filters, which are tied over the two halves of its input (*chosen*: eq. 4
  with the groups outermost, so that mmdet's split attention, which reads
  the radix splits as the outermost channel blocks, still sees one radix
  split per group).
- everything else is ResNeSt's: the attention's 1 x 1 layers (``fc1``,
  ``fc2``), the exit 1 x 1 convolution and the shortcut stay plain.

``avd_first=True`` is ResNeSt's "fast" variant (the baseline of Table 1,
ResNeSt-50-fast 2s1x64d): the average pool of a strided block comes before
the 3 x 3 convolution, which then runs at the lower resolution; mmdet's
ResNeSt pools after it (``avd_first=False``). With ``entry_blocks=1``,
``split_blocks=1`` and ``avd_first=False`` the backbone is mmdet's
``ResNeSt`` (its state dict loads as it is).
"""
from typing import Optional

import torch.nn as nn
from mmcv.cnn import build_conv_layer
from mmdet.models.backbones.resnest import Bottleneck as ResNeStBottleneck
from mmdet.models.backbones.resnest import SplitAttentionConv2d
from mmdet.models.layers import ResLayer
from torch import Tensor

from ..layers import TiedBlockConv2d
from ..registry import MODELS
from ..utils.validation import check_bool, check_positive_int
from .base_resnet import BaseResNet


def _swap_channel_blocks(x: Tensor, outer: int, inner: int) -> Tensor:
    """``x`` with its channels viewed as ``(outer, inner, rest)`` reordered
    to ``(inner, outer, rest)``."""
    n, c = x.shape[:2]
    return x.reshape(n, outer, inner, c // (outer * inner),
                     *x.shape[2:]).transpose(1, 2).reshape(x.shape)


class GroupedTBC(TiedBlockConv2d):
    """A group convolution each of whose ``groups`` groups is a TBC with
    ``blocks`` blocks: TGC (eq. 4) in the paper's channel order, groups
    outermost.

    Group ``g`` maps its ``C_in / G`` input channels to its ``C_out / G``
    output channels with one thin filter applied to each of its ``B``
    blocks. :class:`~sharedbasis_mm.layers.TiedBlockConv2d` orders the
    channels with the blocks outermost; this layer reorders the input and
    the output around it, so it has its parameters and computes the same
    values up to that fixed permutation. At ``blocks=1`` it is the group
    convolution.

    Args:
        Those of :class:`~sharedbasis_mm.layers.TiedBlockConv2d`.
    """

    def forward(self, x: Tensor) -> Tensor:
        groups, blocks = self.groups, self.blocks
        out = super().forward(_swap_channel_blocks(x, groups, blocks))
        return _swap_channel_blocks(out, blocks, groups)


class TiedSplitAttentionConv2d(SplitAttentionConv2d):
    """mmdet's split-attention module with its 3 x 3 convolution tied
    (:class:`GroupedTBC`) and, for ResNeSt-fast, the average-pool
    downsampling before it.

    Args:
        in_channels (int): Input channels.
        channels (int): Channels of each radix split (the output).
        kernel_size (int): Kernel size of the convolution.
        blocks (int): Block number B of the TBC of each group; 1 keeps
            mmdet's group convolution. Defaults to 1.
        pool_stride (int): Stride of a 3 x 3 average pool applied to the
            input first (ResNeSt's ``avd_first``); 1 for none. Defaults
            to 1.
        **kwargs: The arguments of mmdet's ``SplitAttentionConv2d``
            (``stride``, ``padding``, ``dilation``, ``groups``, ``radix``,
            ``reduction_factor``, ``conv_cfg``, ``norm_cfg``).
    """

    def __init__(self,
                 in_channels: int,
                 channels: int,
                 kernel_size: int,
                 blocks: int = 1,
                 pool_stride: int = 1,
                 **kwargs) -> None:
        super().__init__(in_channels, channels, kernel_size, **kwargs)
        if blocks > 1:
            conv = self.conv
            self.conv = GroupedTBC(
                conv.in_channels,
                conv.out_channels,
                conv.kernel_size,
                stride=conv.stride,
                padding=conv.padding,
                dilation=conv.dilation,
                groups=conv.groups,
                bias=False,
                blocks=blocks)
        self.avd_layer: Optional[nn.Module] = (
            nn.AvgPool2d(3, pool_stride, padding=1)
            if pool_stride > 1 else None)

    def forward(self, x: Tensor) -> Tensor:
        if self.avd_layer is not None:
            x = self.avd_layer(x)
        return super().forward(x)


class TiedResNeStBottleneck(ResNeStBottleneck):
    """mmdet's ResNeSt bottleneck (Figure 4c) with a TBC entry and a
    :class:`TiedSplitAttentionConv2d`.

    The tied settings have no defaults here: :class:`TiedResNeSt` gives
    them.

    Args:
        inplanes (int): Input channels.
        planes (int): ``base_channels * 2**i`` at stage ``i``; the output has
            ``4 * planes`` channels.
        entry_blocks (int): Block number B of the entry 1 x 1 TBC.
        split_blocks (int): Block number B of the TBC of each group of the
            3 x 3 convolution.
        avd_first (bool): Average-pool before the 3 x 3 convolution (fast).
        **kwargs: The arguments of mmdet's ResNeSt ``Bottleneck``
            (``groups``, ``base_width``, ``base_channels``, ``radix``,
            ``reduction_factor``, ``avg_down_stride``, ``stride``,
            ``dilation``, ``downsample``, ``style``, ``with_cp``,
            ``conv_cfg``, ``norm_cfg``, ``plugins``, ``init_cfg``).
    """

    def __init__(self, inplanes: int, planes: int, *, entry_blocks: int,
                 split_blocks: int, avd_first: bool, **kwargs) -> None:
        super().__init__(inplanes, planes, **kwargs)
        split = self.conv2
        width = split.channels
        self._check_args(inplanes, width, split.groups * split.radix,
                         entry_blocks, split_blocks)
        if entry_blocks > 1:
            self.conv1 = build_conv_layer(
                dict(type='TBC', blocks=entry_blocks),
                inplanes,
                width,
                kernel_size=1,
                stride=self.conv1_stride,
                bias=False)
        pool_first = avd_first and self.avg_down_stride
        stride = self.conv2_stride
        self.conv2 = TiedSplitAttentionConv2d(
            width,
            width,
            kernel_size=3,
            blocks=split_blocks,
            pool_stride=stride if pool_first else 1,
            stride=1 if self.avg_down_stride else stride,
            padding=self.dilation,
            dilation=self.dilation,
            groups=split.groups,
            radix=split.radix,
            reduction_factor=kwargs.get('reduction_factor', 4),
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg)
        if pool_first:
            # the pool now runs inside conv2, before the convolution
            del self.avd_layer
            self.avg_down_stride = False

    @staticmethod
    def _check_args(inplanes: int, width: int, conv_groups: int,
                    entry_blocks: int, split_blocks: int) -> None:
        """Raise an error naming the argument of a bad configuration."""
        name = 'TiedResNeStBottleneck'
        for arg, value in (('entry_blocks', entry_blocks),
                           ('split_blocks', split_blocks)):
            check_positive_int(arg, value, owner=name)
        for arg, channels in (('inplanes', inplanes), ('width', width)):
            if channels % entry_blocks != 0:
                raise ValueError(
                    f'{name}: {arg}={channels} must be divisible by '
                    f'entry_blocks={entry_blocks}')
        if width % (conv_groups * split_blocks) != 0:
            raise ValueError(
                f'{name}: width={width} must be divisible by radix * groups '
                f'* split_blocks = {conv_groups} * {split_blocks}')


@MODELS.register_module()
class TiedResNeSt(BaseResNet):
    """TiedResNeSt backbone (Tied Block Convolution, Figure 4c, Table 1).

    ResNeSt (mmdet's blocks, its deep stem and average-pool shortcut) with
    :class:`TiedResNeStBottleneck` blocks and the training defaults of
    :class:`~sharedbasis_mm.backbones.base_resnet.BaseResNet`. The
    defaults are the paper's TiedResNeSt50-S: ResNeSt-50-fast 2s1x64d
    (``radix=2``, ``groups=1``, ``avd_first=True``) with the entry 1 x 1
    and every 3 x 3 convolution TBC with B = 2. ``drop_path_rate`` is not
    supported (mmdet's ResNeSt bottleneck has its own forward).

    Args:
        depth (int): 50, 101, 152 or 200.
        groups (int): Cardinality of the 3 x 3 convolution. Defaults to 1.
        base_width (int): Width per group when ``groups > 1``. Defaults
            to 4.
        radix (int): Radix of the split attention. Defaults to 2.
        reduction_factor (int): Reduction of the attention's hidden
            channels. Defaults to 4.
        avg_down_stride (bool): Downsample a strided block's 3 x 3 stage by
            an average pool. Defaults to True.
        avd_first (bool): The pool before the 3 x 3 convolution (ResNeSt
            fast) instead of after it. Defaults to True.
        entry_blocks (int): Block number of the entry 1 x 1 TBC; 1 for a
            plain convolution. Defaults to 2.
        split_blocks (int): Block number of the TBC of each group of the
            3 x 3 convolution; 1 for mmdet's. Defaults to 2.
        **kwargs: The arguments of :class:`BaseResNet` and mmdet's
            ``ResNet`` (``stem_channels``, ``out_indices``,
            ``frozen_stages``, ``norm_cfg``, ``norm_eval``, ``with_cp``,
            ``plugins``, ``init_cfg``, ...); ``deep_stem`` and ``avg_down``
            default to True, as in ResNeSt.
    """

    arch_settings = {
        50: (TiedResNeStBottleneck, (3, 4, 6, 3)),
        101: (TiedResNeStBottleneck, (3, 4, 23, 3)),
        152: (TiedResNeStBottleneck, (3, 8, 36, 3)),
        200: (TiedResNeStBottleneck, (3, 24, 36, 3))
    }

    def __init__(self,
                 depth: int,
                 groups: int = 1,
                 base_width: int = 4,
                 radix: int = 2,
                 reduction_factor: int = 4,
                 avg_down_stride: bool = True,
                 avd_first: bool = True,
                 entry_blocks: int = 2,
                 split_blocks: int = 2,
                 deep_stem: bool = True,
                 avg_down: bool = True,
                 **kwargs) -> None:
        name = type(self).__name__
        for arg, value in (('groups', groups), ('base_width', base_width),
                           ('radix', radix), ('reduction_factor',
                                              reduction_factor)):
            check_positive_int(arg, value, owner=name)
        for arg, value in (('avg_down_stride', avg_down_stride),
                           ('avd_first', avd_first)):
            check_bool(arg, value, owner=name)
        self.resnest_cfg = dict(
            groups=groups,
            base_width=base_width,
            radix=radix,
            reduction_factor=reduction_factor,
            avg_down_stride=avg_down_stride,
            avd_first=avd_first,
            entry_blocks=entry_blocks,
            split_blocks=split_blocks)
        super().__init__(
            depth, deep_stem=deep_stem, avg_down=avg_down, **kwargs)

    def make_res_layer(self, **kwargs) -> ResLayer:
        """Pack the TiedResNeStBottlenecks of a stage into a ``ResLayer``."""
        return ResLayer(
            base_channels=self.base_channels, **self.resnest_cfg, **kwargs)
