"""Tied squeeze-and-excitation (TiedSE, Tied Block Convolution, Figure 5a)."""
from typing import Optional

import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from ..layers.tied import TiedLinear
from ..registry import MODELS
from ..utils.validation import check_divisible, check_positive_int


@MODELS.register_module()
class TiedSE(BaseModule):
    """Squeeze-and-excitation whose two fully connected layers are TFC.

    The channel descriptor (global average pool of the input) is split into
    ``blocks`` equal blocks and every block goes through the same small SE
    bottleneck, ``TFC(C, B * h) -> ReLU -> TFC(B * h, C) -> sigmoid``, whose
    output rescales the input channels. ``blocks=1`` is the standard SE
    (Hu et al., 2018; mmdet's and mmpretrain's ``SELayer``); with B blocks
    the weights shrink ``B**2`` times (the biases ``B`` times).

    The hidden width of one block is ``h = max(min_channels, C // B // ratio)``
    as in the authors' TiedSE (``min_channels=2``), which is what gives the
    0.04M of Table 3 at B = 8 (the pooled 2048 channels of the last stage of
    SEResNet-50 give 256 per block and h = 16).

    It is a plugin layer: ``dict(cfg=dict(type='TiedSE', ratio=16, blocks=8),
    position='after_conv3')`` in the ``plugins`` of mmdet's ``ResNet`` puts it
    where SENet puts its SE module.

    Args:
        in_channels (int): Channels C of the input, divisible by ``blocks``.
        ratio (int): Squeeze ratio r of each block. Defaults to 16.
        blocks (int): Block number B of both TFC layers. Defaults to 1.
        min_channels (int): Lower bound of the hidden width h of one block.
            Defaults to 2.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    _abbr_ = 'tied_se'

    def __init__(self,
                 in_channels: int,
                 ratio: int = 16,
                 blocks: int = 1,
                 min_channels: int = 2,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value in (('in_channels', in_channels), ('ratio', ratio),
                            ('blocks', blocks), ('min_channels',
                                                 min_channels)):
            check_positive_int(name, value, owner='TiedSE')
        check_divisible('in_channels', in_channels, 'blocks', blocks,
                        owner='TiedSE')
        hidden = max(min_channels, in_channels // blocks // ratio) * blocks
        self.squeeze = TiedLinear(in_channels, hidden, blocks=blocks)
        self.excite = TiedLinear(hidden, in_channels, blocks=blocks)

    def forward(self, x: Tensor) -> Tensor:
        scale = self.excite(F.relu(self.squeeze(x.mean(dim=(2, 3)))))
        return x * scale.sigmoid()[..., None, None]
