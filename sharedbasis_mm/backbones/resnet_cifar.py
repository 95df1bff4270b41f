"""The plain CIFAR ResNets of He et al. (ResNet-20/32/44/56/110), the
baselines of Table 3 of Learning Deeply Shared Filter Bases.

mmpretrain's ``ResNet_CIFAR`` is an ImageNet-depth ResNet (four stages of
64-512 channels) with a CIFAR stem. He et al.'s CIFAR ResNets (depth
6n + 2) have three stages of n BasicBlocks with 16, 32 and 64 channels and
parameter-free shortcuts that subsample and zero-pad the new channels
("option A"): the structure of ``SharedBasisResNet_CIFAR`` at these depths
without sharing, with the same state-dict keys (so a plain checkpoint
converts into it with tools/model_converters/resnet_to_shared_basis.py).
"""
from typing import Sequence

from ..registry import MODELS
from .base_resnet import BaseResNet
from .shared_basis_resnet import (CifarStemMixin, SharedBasisBasicBlock,
                                  SharedBasisResLayer)

CIFAR_DEPTHS = (20, 32, 44, 56, 110)


@MODELS.register_module()
class ZeroPadResNet_CIFAR(CifarStemMixin, BaseResNet):
    """He et al.'s CIFAR ResNet: a 3 x 3 stem, three stages of
    ``(depth - 2) / 6`` BasicBlocks and zero-pad shortcuts.

    The arguments are those of :class:`BaseResNet` (mmdet's ``ResNet``),
    with the CIFAR defaults below; ``deep_stem`` is refused (the stem is one
    convolution).

    Args:
        depth (int): 20, 32, 44, 56 or 110.
        num_stages (int): Stages. Defaults to 3.
        stem_channels (int): Channels of the stem. Defaults to 16.
        base_channels (int): Channels of the first stage, doubled at each
            next. Defaults to 16.
        strides (Sequence[int]): Strides of the stages.
            Defaults to (1, 2, 2).
        dilations (Sequence[int]): Dilations of the stages.
            Defaults to (1, 1, 1).
        out_indices (Sequence[int]): Stages whose output is returned.
            Defaults to (2, ).
        **kwargs: The other arguments of :class:`BaseResNet`.
    """

    arch_settings = {
        depth: (SharedBasisBasicBlock, ((depth - 2) // 6, ) * 3)
        for depth in CIFAR_DEPTHS
    }

    def __init__(self,
                 depth: int,
                 num_stages: int = 3,
                 stem_channels: int = 16,
                 base_channels: int = 16,
                 strides: Sequence[int] = (1, 2, 2),
                 dilations: Sequence[int] = (1, 1, 1),
                 out_indices: Sequence[int] = (2, ),
                 **kwargs) -> None:
        if kwargs.get('deep_stem'):
            raise ValueError(f'{type(self).__name__}: deep_stem='
                             f'{kwargs["deep_stem"]!r} is not supported by '
                             f'the CIFAR stem (one 3 x 3 convolution); '
                             f'expected deep_stem=False')
        super().__init__(
            depth,
            num_stages=num_stages,
            stem_channels=stem_channels,
            base_channels=base_channels,
            strides=strides,
            dilations=dilations,
            out_indices=out_indices,
            **kwargs)

    def make_res_layer(self, **kwargs) -> SharedBasisResLayer:
        """A stage of plain blocks, its first with the zero-pad shortcut."""
        return SharedBasisResLayer(
            basis_cfg=None, shortcut_type='pad', **kwargs)
