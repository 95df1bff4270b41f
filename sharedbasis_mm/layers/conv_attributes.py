"""A convolution's geometry, and the attributes mmcv's ``ConvModule`` reads
from the conv it builds."""
from typing import NamedTuple, Tuple, Union

import torch.nn as nn
from torch.nn.modules.utils import _pair

_Padding = Union[Tuple[int, int], str]


class ConvGeometry(NamedTuple):
    """What a convolution maps: channels, kernel size, stride, padding and
    dilation, with the keyword names of ``nn.Conv2d`` (``**geometry._asdict()``
    builds a convolution of the same geometry)."""
    in_channels: int
    out_channels: int
    kernel_size: Tuple[int, int]
    stride: Tuple[int, int]
    padding: _Padding
    dilation: Tuple[int, int]

    @classmethod
    def of(cls, conv: nn.Module) -> 'ConvGeometry':
        """The geometry of ``conv`` (an ``nn.Conv2d`` or a layer with its
        attributes); a string padding (``'same'``) is kept."""
        padding = conv.padding
        return cls(conv.in_channels, conv.out_channels,
                   _pair(conv.kernel_size), _pair(conv.stride),
                   padding if isinstance(padding, str) else _pair(padding),
                   _pair(conv.dilation))


def _geometry_field(name: str) -> property:
    return property(
        lambda self: getattr(self.geometry, name),
        doc=f'``{name}`` of the layer\'s :class:`ConvGeometry`.')


class ConvModuleAttributes:
    """Mixin: the attributes mmcv's ``ConvModule`` reads from its conv.

    ``ConvModule`` copies ``in_channels``, ``out_channels``, ``kernel_size``,
    ``stride``, ``padding``, ``dilation``, ``transposed``, ``output_padding``
    and ``groups`` from the conv a ``conv_cfg`` builds. A layer with this
    mixin sets :attr:`geometry` (a :class:`ConvGeometry`) in its
    ``__init__``; it is no transposed convolution, and has one group unless
    it says otherwise.
    """

    geometry: ConvGeometry
    transposed = False
    output_padding = (0, 0)
    groups = 1

    in_channels = _geometry_field('in_channels')
    out_channels = _geometry_field('out_channels')
    kernel_size = _geometry_field('kernel_size')
    stride = _geometry_field('stride')
    padding = _geometry_field('padding')
    dilation = _geometry_field('dilation')
