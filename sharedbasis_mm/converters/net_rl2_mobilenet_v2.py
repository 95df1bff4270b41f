"""The authors' ImageNet MobileNetV2-Shared and MobileNetV2-Shared‡ in
:class:`~sharedbasis_mm.backbones.SharedBasisMobileNetV2`.

Their keys: the stem ``pre.0`` (a convolution with bias) and ``pre.1``;
blocks ``stage{k}`` (a bare block where a stage has one) or
``stage{k}.{j}`` with ``conv1``/``bn1`` (expansion), ``conv2``/``bn2``
(depthwise), ``conv3``/``bn3`` (projection); in sharing blocks the shared
convolutions are ``shared_basis1`` (expansion) and ``shared_basis2``
(projection), and ``chan_attention`` the ECA layer; the bases of the g-th
sharing stage at the top, ``shared_basis_{g}`` or ``shared_basis_{g}_{1,2}``;
the last ``conv1.0`` (with bias) and ``conv1.1``; the classifier
``classifier.1``. Their configs use the option of the backbone that builds
this structure (``always_expand``, ``block_act_cfg=dict(type='ReLU')``,
``eca`` for Shared‡).
"""
from typing import Iterator, List

import torch.nn as nn
from mmcv.cnn import ConvModule

from ..attention import ECALayer
from ..backbones import SharedBasisMobileNetV2
from ..layers import BasisConv2d
from .net_rl2 import (Entry, module_entries, norm_after_biased_conv_entries,
                      register_net_rl2_mapping)


def _sharing_stage_bases(layer: nn.Sequential, prefix: str,
                         index: int) -> Iterator[Entry]:
    """The bases of the ``index``-th sharing stage, each from its copies."""
    block = layer[1]
    positions: List[int] = [
        position for position, module in enumerate(block.conv[:3])
        if isinstance(getattr(module, 'conv', None), BasisConv2d)
    ]
    for k, position in enumerate(positions, 1):
        top = f'shared_basis_{index}' + (''
                                         if len(positions) == 1 else f'_{k}')
        copies = (f'{top}.weight', ) + tuple(
            f'{prefix}.{j}.shared_basis{k}.weight'
            for j in range(1, len(layer)))
        yield Entry(block.conv[position].conv.shared_basis, (copies, ))


@register_net_rl2_mapping('SharedBasisMobileNetV2', head='classifier.1')
def mobilenet_v2_entries(backbone: SharedBasisMobileNetV2) -> Iterator[Entry]:
    """Their ``MobileNetV2_Shared`` and ``MobileNetV2_SharedDouble``."""
    yield from module_entries(backbone.conv1.conv, 'pre.0')
    yield from norm_after_biased_conv_entries(backbone.conv1.bn, 'pre.1',
                                              'pre.0.bias')
    num_sharing = 0
    for k, name in enumerate(backbone.layers[:-1], 1):
        layer = getattr(backbone, name)
        sharing = len(layer) > 1 and isinstance(
            getattr(layer[1].conv[0], 'conv', None), BasisConv2d)
        if sharing:
            num_sharing += 1
            yield from _sharing_stage_bases(layer, f'stage{k}', num_sharing)
        for j, block in enumerate(layer):
            prefix = f'stage{k}' if len(layer) == 1 else f'stage{k}.{j}'
            # Without the expansion (mmpretrain's block of ratio 1), the
            # depthwise convolution comes first.
            convs = [m for m in block.conv if isinstance(m, ConvModule)]
            for position, module in enumerate(convs, 4 - len(convs)):
                if not isinstance(module.conv, BasisConv2d):
                    yield from module_entries(module.conv,
                                              f'{prefix}.conv{position}')
                yield from module_entries(module.norm,
                                          f'{prefix}.bn{position}')
            for module in block.conv:
                if isinstance(module, ECALayer):
                    yield from module_entries(module,
                                              f'{prefix}.chan_attention')
    yield from module_entries(backbone.conv2.conv, 'conv1.0')
    yield from norm_after_biased_conv_entries(backbone.conv2.bn, 'conv1.1',
                                              'conv1.0.bias')
