"""mmpretrain's SEResNet and EfficientNet with TiedSE in place of their SE
modules (Tied Block Convolution, Table 3).

Each class is the mmpretrain backbone itself, built by mmpretrain's own
``__init__``, whose ``SELayer`` modules are then replaced, under the same
attribute names, by the :class:`~sharedbasis_mm.attention.TiedSE` of the
same widths and activation with ``se_blocks`` blocks
(:func:`~sharedbasis_mm.attention.replace_se_layers`). Every other argument
and behaviour (``out_indices``, ``frozen_stages``, ``norm_eval``,
``with_cp``, ``zero_init_residual``, ``drop_path_rate``, ...) is
mmpretrain's. At ``se_blocks=1`` the model computes what the mmpretrain
backbone computes with the same weights.

The names keep the host's name and add what replaces its SE:
``TiedSEResNet`` is taken by the paper's TiedSENet (a TiedResNet with
TiedSE), and mmpretrain's SEResNet and EfficientNet take no SE config
argument that a config switch could set.
"""
from mmpretrain.models.backbones import EfficientNet, SEResNet

from ..attention import replace_se_layers
from ..registry import MODELS
from ..utils.validation import check_positive_int


class TiedSEMixin:
    """Replaces the SE modules of the host built by ``super().__init__``.

    Args:
        se_blocks (int): Block number B of the TiedSE modules. Defaults
            to 1.
        se_min_channels (int): Lower bound of the hidden width of one block.
            Defaults to 2.
        **kwargs: The arguments of the mmpretrain host.
    """

    def __init__(self,
                 *args,
                 se_blocks: int = 1,
                 se_min_channels: int = 2,
                 **kwargs) -> None:
        owner = type(self).__name__
        check_positive_int('se_blocks', se_blocks, owner=owner)
        check_positive_int('se_min_channels', se_min_channels, owner=owner)
        super().__init__(*args, **kwargs)
        self.se_blocks = se_blocks
        try:
            replace_se_layers(self, se_blocks, se_min_channels)
        except ValueError as error:
            raise ValueError(
                f'{owner}: se_blocks={se_blocks} does not fit an SE module '
                f'of the backbone ({error})') from error


@MODELS.register_module()
class SEResNetTiedSE(TiedSEMixin, SEResNet):
    """mmpretrain's ``SEResNet`` whose SE modules are TiedSE with
    ``se_blocks`` blocks (Table 3: 2.53M SE parameters in SEResNet-50,
    0.64M / 0.16M / 0.04M at B = 2 / 4 / 8).

    Args:
        depth (int): 50, 101 or 152.
        se_blocks (int): Block number B of the TiedSE modules. Defaults
            to 1.
        se_min_channels (int): Lower bound of the hidden width of one block.
            Defaults to 2.
        **kwargs: The arguments of mmpretrain's ``SEResNet`` (``se_ratio``,
            ``out_indices``, ``frozen_stages``, ...).
    """


@MODELS.register_module()
class EfficientNetTiedSE(TiedSEMixin, EfficientNet):
    """mmpretrain's ``EfficientNet`` whose SE modules are TiedSE with
    ``se_blocks`` blocks and the SE's own widths and Swish activation
    (Table 3: 0.65M SE parameters in EfficientNet-B0, 0.16M / 0.04M at
    B = 2 / 4).

    Args:
        arch (str): mmpretrain's EfficientNet architecture. Defaults to
            ``'b0'``.
        se_blocks (int): Block number B of the TiedSE modules; it must
            divide the channels of every SE of the architecture. Defaults
            to 1.
        se_min_channels (int): Lower bound of the hidden width of one block.
            Defaults to 2.
        **kwargs: The arguments of mmpretrain's ``EfficientNet``.
    """
