"""Tied squeeze-and-excitation (TiedSE, Tied Block Convolution, Figure 5a)."""
from typing import Optional

import torch.nn as nn
from mmcv.cnn import build_activation_layer
from mmengine.model import BaseModule
from mmpretrain.models.utils import SELayer
from torch import Tensor

from ..layers.tied import TiedLinear
from ..registry import MODELS
from ..utils.validation import (check_divisible, check_positive_int,
                                check_type)


@MODELS.register_module()
class TiedSE(BaseModule):
    """Squeeze-and-excitation whose two fully connected layers are TFC.

    The channel descriptor (global average pool of the input) is split into
    ``blocks`` equal blocks and every block goes through the same small SE
    bottleneck, ``TFC(C, B * h) -> act -> TFC(B * h, C) -> sigmoid``, whose
    output rescales the input channels. ``blocks=1`` is the standard SE
    (Hu et al., 2018; mmdet's and mmpretrain's ``SELayer``); with B blocks
    the weights shrink ``B**2`` times (the biases ``B`` times).

    The hidden width of one block is ``h = max(min_channels, C // B // ratio)``
    as in the authors' TiedSE (``min_channels=2``), which is what gives the
    0.04M of Table 3 at B = 8 (the pooled 2048 channels of the last stage of
    SEResNet-50 give 256 per block and h = 16). ``squeeze_channels`` gives
    the hidden width of the SE itself (B = 1) instead of ``C // ratio``, as
    mmpretrain's ``SELayer`` takes it; then ``h = max(min_channels,
    squeeze_channels // B)``, the same rule (``C // B // ratio`` is
    ``(C // ratio) // B``).

    It is a plugin layer: ``dict(cfg=dict(type='TiedSE', ratio=16, blocks=8),
    position='after_conv3')`` in the ``plugins`` of mmdet's ``ResNet`` puts it
    where SENet puts its SE module; :func:`replace_se_layers` puts it in
    place of the ``SELayer`` modules of a built mmpretrain model.

    Args:
        in_channels (int): Channels C of the input, divisible by ``blocks``.
        ratio (int): Squeeze ratio r of each block. Defaults to 16.
        blocks (int): Block number B of both TFC layers. Defaults to 1.
        min_channels (int): Lower bound of the hidden width h of one block.
            Defaults to 2.
        squeeze_channels (int, optional): Hidden width of the SE at B = 1;
            None: ``in_channels // ratio``. Defaults to None.
        act_cfg (dict): Activation after the squeeze TFC. Defaults to ReLU
            (EfficientNet's SE takes Swish).
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    _abbr_ = 'tied_se'

    def __init__(self,
                 in_channels: int,
                 ratio: int = 16,
                 blocks: int = 1,
                 min_channels: int = 2,
                 squeeze_channels: Optional[int] = None,
                 act_cfg: dict = dict(type='ReLU'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value in (('in_channels', in_channels), ('ratio', ratio),
                            ('blocks', blocks), ('min_channels',
                                                 min_channels)):
            check_positive_int(name, value, owner='TiedSE')
        check_divisible('in_channels', in_channels, 'blocks', blocks,
                        owner='TiedSE')
        if squeeze_channels is None:
            squeeze_channels = in_channels // ratio
        else:
            check_positive_int(
                'squeeze_channels', squeeze_channels, owner='TiedSE')
        check_type('act_cfg', act_cfg, dict, owner='TiedSE')
        hidden = max(min_channels, squeeze_channels // blocks) * blocks
        self.squeeze = TiedLinear(in_channels, hidden, blocks=blocks)
        self.activate = build_activation_layer(act_cfg)
        self.excite = TiedLinear(hidden, in_channels, blocks=blocks)

    def forward(self, x: Tensor) -> Tensor:
        scale = self.excite(self.activate(self.squeeze(x.mean(dim=(2, 3)))))
        return x * scale.sigmoid()[..., None, None]

    @classmethod
    def from_se_layer(cls,
                      se: SELayer,
                      blocks: int = 1,
                      min_channels: int = 2) -> 'TiedSE':
        """The TiedSE with ``blocks`` blocks in place of mmpretrain's
        ``SELayer`` ``se``: its channels, hidden width and hidden activation
        (fresh weights; at ``blocks=1`` the same function as ``se`` once its
        weights are copied).

        Raises:
            ValueError: for an SE whose gate is not a sigmoid, which returns
                its weights instead of the rescaled input, or whose
                convolutions have no bias, which TiedSE does not express.
        """
        squeeze, excite = se.conv1, se.conv2
        if (excite.act_cfg or {}).get('type') != 'Sigmoid':
            raise ValueError(
                'TiedSE.from_se_layer: the SE gate must be a Sigmoid, got '
                f'act_cfg={excite.act_cfg}')
        if se.return_weight or not (squeeze.with_bias and excite.with_bias):
            raise ValueError(
                'TiedSE.from_se_layer: expected an SELayer with biases and '
                f'return_weight=False, got return_weight={se.return_weight}, '
                f'bias={squeeze.with_bias}')
        return cls(
            squeeze.in_channels,
            blocks=blocks,
            min_channels=min_channels,
            squeeze_channels=squeeze.out_channels,
            act_cfg=squeeze.act_cfg)


def replace_se_layers(model: nn.Module,
                      blocks: int,
                      min_channels: int = 2) -> int:
    """Replace every mmpretrain ``SELayer`` of ``model`` by the
    :class:`TiedSE` with ``blocks`` blocks of the same widths
    (:meth:`TiedSE.from_se_layer`), under the same attribute name.

    Returns:
        int: The number of SE modules replaced.
    """
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, SELayer):
                setattr(parent, name,
                        TiedSE.from_se_layer(child, blocks, min_channels))
                replaced += 1
    return replaced
