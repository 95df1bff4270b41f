"""Tied global context block (TiedGCB, Tied Block Convolution, Figure 5b)."""
from typing import Sequence

import torch.nn as nn
from mmcv.cnn import ContextBlock

from ..layers.tied import TiedBlockConv2d
from ..registry import MODELS
from ..utils.validation import (check_divisible, check_number,
                                check_positive_int)


@MODELS.register_module()
class TiedGCB(ContextBlock):
    """Global context block whose transform is made of TBC.

    mmcv's :class:`~mmcv.cnn.ContextBlock` (GCNet, Cao et al., 2019) with the
    two 1 x 1 convolutions of each transform (``channel_add_conv`` and
    ``channel_mul_conv``, ``C -> C * ratio -> C`` with a LayerNorm and a ReLU
    between) replaced by tied block convolutions with ``blocks`` blocks. The
    attention pooling (``conv_mask``) and the LayerNorm keep their width. The
    transform's weights shrink ``B**2`` times (its biases ``B`` times); at
    ``blocks=1`` the block computes exactly what ``ContextBlock`` computes.

    A plugin layer like ``ContextBlock``: ``plugins=[dict(cfg=dict(
    type='TiedGCB', ratio=1/16, blocks=2), stages=(False, True, True, True),
    position='after_conv3')]`` in mmdet's ``ResNet``.

    Args:
        in_channels (int): Channels C of the input, divisible by ``blocks``.
        ratio (float): Width of the transform's bottleneck relative to C;
            ``int(C * ratio)`` must be divisible by ``blocks``.
        blocks (int): Block number B of the transform's TBC layers.
            Defaults to 1.
        pooling_type (str): ``'att'`` or ``'avg'``. Defaults to ``'att'``.
        fusion_types (Sequence[str]): Fusions among ``'channel_add'`` and
            ``'channel_mul'``. Defaults to ``('channel_add',)``.
    """

    _abbr_ = 'tied_gcb'

    def __init__(self,
                 in_channels: int,
                 ratio: float,
                 blocks: int = 1,
                 pooling_type: str = 'att',
                 fusion_types: Sequence[str] = ('channel_add', )) -> None:
        check_positive_int('in_channels', in_channels, owner='TiedGCB')
        check_number('ratio', ratio, min_value=0, min_inclusive=False,
                     owner='TiedGCB')
        check_positive_int('blocks', blocks, owner='TiedGCB')
        check_divisible('in_channels', in_channels, 'blocks', blocks,
                        owner='TiedGCB')
        check_divisible('int(in_channels * ratio)', int(in_channels * ratio),
                        'blocks', blocks, owner='TiedGCB')
        super().__init__(in_channels, ratio, pooling_type, tuple(fusion_types))
        self.blocks = blocks
        if self.channel_add_conv is not None:
            self.channel_add_conv = self._tied_transform()
        if self.channel_mul_conv is not None:
            self.channel_mul_conv = self._tied_transform()
        # zero the last TBC of each transform, as ContextBlock does
        self.reset_parameters()

    def _tied_transform(self) -> nn.Sequential:
        """``TBC(C, C * ratio) -> LayerNorm -> ReLU -> TBC(C * ratio, C)``."""
        return nn.Sequential(
            TiedBlockConv2d(
                self.in_channels, self.planes, kernel_size=1,
                blocks=self.blocks),
            nn.LayerNorm([self.planes, 1, 1]), nn.ReLU(inplace=True),
            TiedBlockConv2d(
                self.planes, self.in_channels, kernel_size=1,
                blocks=self.blocks))
