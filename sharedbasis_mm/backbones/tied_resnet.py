"""TiedResNet, TiedResNeXt and TiedSENet of Tied Block Convolution (Figure 4a-b, Table 1).

The backbones are mmdet's :class:`~mmdet.models.backbones.ResNet` with
:class:`TiedBottleneck` blocks, built the way mmdet builds ResNeXt (a
bottleneck subclass and an overridden ``make_res_layer``), so ``out_indices``,
``frozen_stages``, ``norm_cfg``, ``norm_eval``, ``with_cp``, ``plugins`` and
``init_cfg`` are mmdet's own, and ``drop_path_rate`` is mmpretrain's (see
:class:`~sharedbasis_mm.backbones.base_resnet.BaseResNet`).

Design (what the paper leaves open is marked *chosen*; the numbers it gives
are in docs/tied_block_convolution.md):

- entry: 1 x 1 TBC with ``entry_blocks=2`` from the block input to
  ``width = splits * w`` channels, norm, ReLU (``conv1``).
- 3 x 3 stage (:class:`TiedSplitConv`, ``conv2``): the ``width`` channels are
  split into ``splits`` parts of ``w`` channels, ``w = base_width * 2**i`` at
  stage ``i`` (ResNeXt's width rule). Part ``j`` is a 3 x 3 TBC (TGC with
  ``groups > 1``) with ``split_blocks[j]`` blocks, a norm and a ReLU.
- mixer (*chosen*): a 1 x 1 convolution from the element-wise sum of the
  split outputs (``w`` channels; ``mixer='sum'``, the paper's default) or from
  their concatenation (``width`` channels; ``mixer='cat'``, Table 6) to
  ``width`` channels, added to the concatenated split outputs; then the
  bottleneck's norm and ReLU (``norm2``). Only the mixer's input differs
  between the two fusions, as the paper describes it.
- exit: plain 1 x 1 convolution from ``width`` to ``4 * planes`` channels,
  norm (``conv3``), the residual shortcut (mmdet's, plain) and a ReLU.
"""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmdet.models.backbones.resnext import Bottleneck as ResNeXtBottleneck
from mmdet.models.layers import ResLayer
from torch import Tensor

from ..layers.fusion import (NormFusable, SwitchToDeployMixin,
                             fold_batch_norm, load_weight_bias)
from ..registry import MODELS
from ..utils.validation import (check_bool, check_choice, check_int,
                                check_positive_int)
from .base_resnet import BaseResNet, DropPathMixin

MIXERS = ('sum', 'cat')


class TiedSplitConv(NormFusable, nn.Module):
    """The 3 x 3 stage of the TiedBottleneck: tied splits and their mixer.

    The ``in_channels`` input channels are split into ``len(split_blocks)``
    equal parts. Part ``j`` goes through a 3 x 3 TBC with
    ``split_blocks[j]`` blocks (a TGC when ``groups > 1``), a norm layer and a
    ReLU. The mixer, a 1 x 1 convolution to ``in_channels`` channels, reads
    the element-wise sum (``mixer='sum'``) or the concatenation
    (``mixer='cat'``) of the part outputs; its output is added to their
    concatenation.

    Args:
        in_channels (int): Input (and output) channels, ``splits * w``.
        split_blocks (Sequence[int]): Block number B of each part.
        stride (int): Stride of the 3 x 3 convolutions. Defaults to 1.
        dilation (int): Dilation of the 3 x 3 convolutions. Defaults to 1.
        groups (int): Groups of the convolution inside each TBC block.
            Defaults to 1.
        mixer (str): ``'sum'`` or ``'cat'``. Defaults to ``'sum'``.
        norm_cfg (dict): Norm layer after each part. Defaults to BN.
    """

    def __init__(self,
                 in_channels: int,
                 split_blocks: Sequence[int],
                 stride: int = 1,
                 dilation: int = 1,
                 groups: int = 1,
                 mixer: str = 'sum',
                 norm_cfg: dict = dict(type='BN')) -> None:
        super().__init__()
        check_choice('mixer', mixer, MIXERS, owner=type(self).__name__)
        split_width = in_channels // len(split_blocks)
        conv_type = 'TGC' if groups > 1 else 'TBC'
        self.splits = nn.ModuleList(
            nn.Sequential(
                build_conv_layer(
                    dict(type=conv_type, blocks=blocks),
                    split_width,
                    split_width,
                    kernel_size=3,
                    stride=stride,
                    padding=dilation,
                    dilation=dilation,
                    groups=groups,
                    bias=False),
                build_norm_layer(norm_cfg, split_width)[1],
                nn.ReLU(inplace=True)) for blocks in split_blocks)
        self.fusion = mixer
        self.mixer = build_conv_layer(
            None,
            split_width if mixer == 'sum' else in_channels,
            in_channels,
            kernel_size=1,
            bias=False)

    def forward(self, x: Tensor) -> Tensor:
        outs = [
            split(part)
            for split, part in zip(self.splits, x.chunk(len(self.splits), 1))
        ]
        out = torch.cat(outs, dim=1)
        fused = torch.stack(outs).sum(0) if self.fusion == 'sum' else out
        return out + self.mixer(fused)

    @torch.no_grad()
    def fuse(self, norm: Optional[nn.Module] = None) -> 'MergedSplitConv':
        """The deploy form, :class:`MergedSplitConv`, of this stage followed
        by ``norm`` (the bottleneck's ``norm2``). Exact in eval mode:

        - each part's norm folds into its TBC, which becomes a group
          convolution (:meth:`TiedBlockConv2d.fuse`), and consecutive parts
          of the same block number merge into one group convolution on
          their channels;
        - the mixer and the addition of the concatenated parts become one
          1 x 1 convolution on the concatenation, ``I + [M, ..., M]``
          (``'sum'``: the mixer of the sum is the mixer repeated on each
          part) or ``I + M`` (``'cat'``), into which ``norm`` folds.
        """
        convs: List[nn.Conv2d] = []
        for tbc, split_norm, _ in self.splits:
            conv = tbc.fuse(split_norm)
            if convs and convs[-1].groups * conv.in_channels == (
                    conv.groups * convs[-1].in_channels):
                convs[-1] = _concat_group_convs(convs[-1], conv)
            else:
                convs.append(conv)
        mixer = self.mixer.weight
        if self.fusion == 'sum':
            mixer = mixer.repeat(1, len(self.splits), 1, 1)
        width = mixer.shape[0]
        identity = torch.eye(width, dtype=mixer.dtype, device=mixer.device)
        weight, bias = fold_batch_norm(mixer + identity[..., None, None],
                                       None, norm)
        merged = MergedSplitConv(convs, width)
        load_weight_bias(merged.mixer, weight, bias)
        return merged


def _concat_group_convs(first: nn.Conv2d, second: nn.Conv2d) -> nn.Conv2d:
    """One group convolution computing two of the same group width side by
    side: on the concatenation of their inputs, it gives the concatenation
    of their outputs."""
    return load_weight_bias(
        nn.Conv2d(
            first.in_channels + second.in_channels,
            first.out_channels + second.out_channels,
            first.kernel_size,
            stride=first.stride,
            padding=first.padding,
            dilation=first.dilation,
            groups=first.groups + second.groups),
        torch.cat([first.weight, second.weight]),
        torch.cat([first.bias, second.bias]))


class MergedSplitConv(nn.Module):
    """The deploy form of :class:`TiedSplitConv` and the norm after it.

    The input channels are cut into consecutive ranges, one per
    convolution of ``convs`` (the parts of one block number, merged); each
    range goes through its convolution and a ReLU, and one 1 x 1
    convolution with bias, ``mixer``, maps their concatenation to the
    output (the mixer, the residual addition and the norm, folded).

    Args:
        convs (Sequence[nn.Conv2d]): The merged parts, in channel order.
        channels (int): Input (and output) channels.
    """

    def __init__(self, convs: Sequence[nn.Conv2d], channels: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(convs)
        self.mixer = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        if len(self.convs) == 1:
            out = F.relu(self.convs[0](x))
        else:
            parts = x.split([conv.in_channels for conv in self.convs], 1)
            out = torch.cat([
                F.relu(conv(part)) for conv, part in zip(self.convs, parts)
            ], 1)
        return self.mixer(out)


class TiedBottleneck(DropPathMixin, ResNeXtBottleneck):
    """The TiedBottleneck of Figure 4a (TiedResNet) and 4b (TiedResNeXt).

    mmdet's ResNeXt bottleneck with ``width = splits * w`` channels, whose
    entry 1 x 1 convolution is a TBC with ``entry_blocks`` blocks and whose
    3 x 3 convolution is a :class:`TiedSplitConv`; the exit 1 x 1 convolution
    stays plain. ``groups > 1`` makes the 3 x 3 parts TGC (TiedResNeXt). An SE
    module is a plugin at ``after_conv3`` (see :class:`TiedSEResNet`).
    ``conv_cfg`` applies to the exit convolution only. The residual branch
    goes through ``drop_path`` (stochastic depth, :class:`DropPathMixin`).

    The tied settings have no defaults here: :class:`TiedResNet` gives them
    (its defaults are the paper's TiedResNet).

    Args:
        inplanes (int): Input channels.
        planes (int): ``base_channels * 2**i`` at stage ``i``; the output has
            ``4 * planes`` channels.
        splits (int): Number of parts s of the 3 x 3 stage, at least 2.
        base_width (int): Part width w at the first stage; it doubles with
            each stage.
        split_blocks (Sequence[int]): Block number B of each part, one per
            part.
        entry_blocks (int): Block number B of the entry 1 x 1 TBC.
        groups (int): Groups inside each 3 x 3 TBC block (TGC).
        mixer (str): Fusion of the parts read by the mixer, ``'sum'`` or
            ``'cat'``.
        base_channels (int): ``planes`` of the first stage. Defaults to 64.
        **kwargs: The arguments of mmdet's ``Bottleneck`` (``stride``,
            ``dilation``, ``downsample``, ``style``, ``with_cp``,
            ``conv_cfg``, ``norm_cfg``, ``plugins``, ``init_cfg``).
    """

    expansion = 4

    def __init__(self,
                 inplanes: int,
                 planes: int,
                 *,
                 splits: int,
                 base_width: int,
                 split_blocks: Sequence[int],
                 entry_blocks: int,
                 groups: int,
                 mixer: str,
                 base_channels: int = 64,
                 **kwargs) -> None:
        split_width = planes * base_width // base_channels
        self._check_args(inplanes, planes, splits, base_width, split_width,
                         split_blocks, entry_blocks, groups)
        # ResNeXt's width rule with `splits` groups gives width = splits * w
        super().__init__(
            inplanes,
            planes,
            groups=splits,
            base_width=base_width,
            base_channels=base_channels,
            **kwargs)
        width = splits * split_width
        self.conv1 = build_conv_layer(
            dict(type='TBC', blocks=entry_blocks),
            inplanes,
            width,
            kernel_size=1,
            stride=self.conv1_stride,
            bias=False)
        self.conv2 = TiedSplitConv(
            width,
            split_blocks,
            stride=self.conv2_stride,
            dilation=self.dilation,
            groups=groups,
            mixer=mixer,
            norm_cfg=self.norm_cfg)

    @staticmethod
    def _check_args(inplanes: int, planes: int, splits: int, base_width: int,
                    split_width: int, split_blocks: Sequence[int],
                    entry_blocks: int, groups: int) -> None:
        """Raise an error naming the argument of a bad configuration."""
        name = 'TiedBottleneck'
        check_int('splits', splits, min_value=2, owner=name)
        for arg, value in (('base_width', base_width),
                           ('entry_blocks', entry_blocks), ('groups',
                                                            groups)):
            check_positive_int(arg, value, owner=name)
        if len(split_blocks) != splits:
            raise ValueError(
                f'{name}: split_blocks must give one block number per split, '
                f'got split_blocks={tuple(split_blocks)} of length '
                f'{len(split_blocks)} for splits={splits}')
        for j, blocks in enumerate(split_blocks):
            check_positive_int(f'split_blocks[{j}]', blocks, owner=name)
            if split_width % (blocks * groups) != 0:
                raise ValueError(
                    f'{name}: the split width {split_width} (base_width='
                    f'{base_width} at planes={planes}) must be divisible by '
                    f'split_blocks[{j}] * groups = {blocks} * {groups}')
        for arg, channels in (('inplanes', inplanes),
                              ('width (splits * split width)',
                               splits * split_width)):
            if channels % entry_blocks != 0:
                raise ValueError(
                    f'{name}: {arg}={channels} must be divisible by '
                    f'entry_blocks={entry_blocks}')


@MODELS.register_module()
class TiedResNet(SwitchToDeployMixin, BaseResNet):
    """TiedResNet backbone (Tied Block Convolution, Figure 4a, Table 1).

    mmdet's ResNet whose bottlenecks are :class:`TiedBottleneck`, with the
    training defaults of
    :class:`~sharedbasis_mm.backbones.base_resnet.BaseResNet`
    (``norm_eval=False``; ``zero_init_residual`` zeroes each ``norm3``). The
    paper's settings are ``splits=4, base_width=32`` (4s x 32w, default) and
    ``base_width=18`` for the slim TiedResNet-S (4s x 18w, which needs
    ``split_blocks`` dividing 18, e.g. ``(1, 2, 2, 2)``).

    Args:
        depth (int): 50 or 101.
        splits (int): Parts of the 3 x 3 stage. Defaults to 4.
        base_width (int): Part width at the first stage. Defaults to 32.
        split_blocks (Sequence[int]): Block number of each part.
            Defaults to ``(1, 2, 4, 8)``.
        entry_blocks (int): Block number of the entry 1 x 1 TBC.
            Defaults to 2.
        groups (int): Groups inside each 3 x 3 TBC block. Defaults to 1.
        mixer (str): ``'sum'`` or ``'cat'``. Defaults to ``'sum'``.
        deploy (bool): Build the inference structure of
            :meth:`switch_to_deploy` (every norm folded into the convolution
            before it, each TBC a group convolution, each tied 3 x 3 stage a
            :class:`MergedSplitConv`, the tied plugins' TBC and TFC plain
            layers), to load a fused checkpoint. Defaults to False.
        **kwargs: The arguments of :class:`BaseResNet` (``drop_path_rate``)
            and of mmdet's ``ResNet`` (``out_indices``, ``frozen_stages``,
            ``norm_cfg``, ``norm_eval``, ``with_cp``, ``plugins``,
            ``init_cfg``, ...).
    """

    arch_settings = {
        50: (TiedBottleneck, (3, 4, 6, 3)),
        101: (TiedBottleneck, (3, 4, 23, 3))
    }

    def __init__(self,
                 depth: int,
                 splits: int = 4,
                 base_width: int = 32,
                 split_blocks: Sequence[int] = (1, 2, 4, 8),
                 entry_blocks: int = 2,
                 groups: int = 1,
                 mixer: str = 'sum',
                 deploy: bool = False,
                 **kwargs) -> None:
        check_bool('deploy', deploy, owner=type(self).__name__)
        self.tied_cfg = dict(
            splits=splits,
            base_width=base_width,
            split_blocks=tuple(split_blocks),
            entry_blocks=entry_blocks,
            groups=groups,
            mixer=mixer)
        super().__init__(depth, **kwargs)
        if deploy:
            self.switch_to_deploy()

    def make_res_layer(self, **kwargs) -> ResLayer:
        """Pack the TiedBottlenecks of a stage into a ``ResLayer``."""
        return ResLayer(
            base_channels=self.base_channels, **self.tied_cfg, **kwargs)


@MODELS.register_module()
class TiedResNeXt(TiedResNet):
    """TiedResNeXt backbone (Figure 4b): TGC in the 3 x 3 parts.

    A :class:`TiedResNet` whose parts are grouped: with the defaults,
    4s x 64w with 8 groups of 8 channels per part, i.e. ResNeXt-32x8d's
    cardinality and group width spread over 4 splits.

    Args:
        depth (int): 50 or 101.
        base_width (int): Part width at the first stage. Defaults to 64.
        groups (int): Groups inside each 3 x 3 TBC block. Defaults to 8.
        **kwargs: The arguments of :class:`TiedResNet`.
    """

    def __init__(self,
                 depth: int,
                 base_width: int = 64,
                 groups: int = 8,
                 **kwargs) -> None:
        super().__init__(depth, base_width=base_width, groups=groups, **kwargs)


@MODELS.register_module()
class TiedSEResNet(TiedResNet):
    """TiedSENet backbone: a :class:`TiedResNet` with a TiedSE module in
    every bottleneck, after the exit convolution's norm (where SENet puts its
    SE module), i.e. the plugin ``dict(cfg=dict(type='TiedSE',
    ratio=se_ratio, blocks=se_blocks), position='after_conv3')``.

    Args:
        depth (int): 50 or 101.
        se_ratio (int): Squeeze ratio of the TiedSE modules. Defaults to 16.
        se_blocks (int): Block number B of their TFC layers. Defaults to 1.
        plugins (list[dict], optional): Further plugins. Defaults to None.
        **kwargs: The arguments of :class:`TiedResNet`.
    """

    def __init__(self,
                 depth: int,
                 se_ratio: int = 16,
                 se_blocks: int = 1,
                 plugins: Sequence[dict] = None,
                 **kwargs) -> None:
        se = dict(
            cfg=dict(type='TiedSE', ratio=se_ratio, blocks=se_blocks),
            position='after_conv3')
        super().__init__(depth, plugins=[se, *(plugins or [])], **kwargs)
