"""Tied block layers of "Tied Block Convolution" (Wang and Yu, AAAI 2021).

A tied block layer splits its C input channels into B equal blocks and applies
ONE thin filter, defined on C/B channels, to every block (eq. 3). The blocks
are folded into the batch dimension or form the groups of a group
convolution, whichever is faster for the input's shape, so the layer runs as
a single convolution (or matrix product) whatever B is.
"""
from typing import Dict, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.utils.benchmark import Timer

from ..registry import MODELS
from ..utils.validation import (check_bool, check_choice, check_divisible,
                                check_positive_int)
from .conv_attributes import ConvGeometry, ConvModuleAttributes
from .fusion import NormFusable, fold_batch_norm, load_weight_bias

_IntPair = Union[int, Tuple[int, int]]

TBC_IMPLS = ('auto', 'fold', 'grouped')

# The faster form of each TBC geometry and input layout, timed once.
FASTEST_TBC_IMPL: Dict[Tuple, str] = {}


class TiedModule(NormFusable, nn.Module):
    """A layer applying one module, its child named :attr:`tied_name`, to
    every block: its ``weight`` and ``bias`` are that module's. Its deploy
    form (:meth:`fuse`) is the plain layer with the tied weight repeated on
    the block diagonal."""

    tied_name: str

    @property
    def weight(self) -> Tensor:
        """The tied weight."""
        return getattr(self, self.tied_name).weight

    @property
    def bias(self) -> Optional[Tensor]:
        """The tied bias, or None."""
        return getattr(self, self.tied_name).bias


@MODELS.register_module('TBC')
@MODELS.register_module('TGC')
class TiedBlockConv2d(ConvModuleAttributes, TiedModule):
    """Tied block convolution (TBC, eq. 3) and its group form (TGC, eq. 4).

    The input channels are split into ``blocks`` equal blocks and one filter
    bank of shape ``(out_channels / B, in_channels / (B * groups), k, k)`` is
    applied to each of them; the B responses are concatenated along the
    channels. It is a group convolution with B groups whose weight is the same
    thin filter repeated B times, computed as one convolution call, in
    either of two forms (``impl``):

    - ``'fold'``: the convolution with the thin filter on the input viewed as
      ``(N * B, C / B, H, W)``: the blocks folded into the batch.
    - ``'grouped'``: the group convolution with B groups whose weight is the
      thin filter repeated B times.

    Both compute the same values, and neither is faster for every shape:
    folding is a free view of an NCHW input (a copy of a ``channels_last``
    one) but convolves ``N * B`` thin images, slow for many large maps of
    few channels, while the grouped convolution is slow for small maps (see
    docs/deployment_and_benchmarks.md). ``impl='auto'`` times both
    forms once (forward, without gradients) for each new input shape,
    layout, dtype and device, as ``cudnn.benchmark`` does, and runs the
    faster one from then on (:data:`FASTEST_TBC_IMPL` caches the choices);
    while a model is traced, compiled or exported, it folds unless the shape
    was timed before. The default is ``'fold'``, one fixed form: a detector
    sees a new input shape at nearly every batch, where ``'auto'`` would
    time again and again, and a fixed form keeps runs reproducible. Use
    ``'auto'`` for fixed-shape inputs (classification, deployment).

    With ``groups = G > 1`` this is the tied block group convolution (TGC):
    inside each block, the thin filter is itself a group convolution with G
    groups. The channels are ordered (block, group, channel), blocks
    outermost; eq. 4 of the paper orders them (group, block), which is the
    same layer up to a fixed permutation of the input and output channels,
    and the order used here keeps the fold into the batch a pure view. At
    ``blocks=1`` TBC is a standard and TGC a group convolution.

    Registered as ``TBC`` and ``TGC``, so that
    ``build_conv_layer(dict(type='TBC', blocks=2), 64, 64, 3, padding=1)``
    and any mmcv/mmdet module that takes a ``conv_cfg`` can use it.

    Args:
        in_channels (int): Input channels C_in, divisible by
            ``blocks * groups``.
        out_channels (int): Output channels C_out, divisible by
            ``blocks * groups``.
        kernel_size (int | tuple[int, int]): Size of the convolving kernel.
        groups (int): Groups of the convolution inside each block (TGC).
            Defaults to 1.
        bias (bool): Whether the thin filter has a bias (C_out / B values,
            tied like the weight). Defaults to True.
        blocks (int): The block number B. Defaults to 1.
        impl (str): How the B blocks are computed: ``'fold'``,
            ``'grouped'`` or ``'auto'`` (the faster of the two for each
            input shape, timed on its first call). Defaults to ``'fold'``.
        **kwargs: ``stride``, ``padding`` (a string such as ``'same'``
            included), ``dilation`` and ``padding_mode`` of the thin
            filter's convolution, as ``nn.Conv2d`` takes them.

    Its ``weight`` is the tied filter, ``(C_out / B, C_in / (B * groups), k,
    k)``, its ``bias`` the tied bias, ``(C_out / B,)``, or None. For
    inference, :meth:`fuse` gives the equivalent group convolution with the
    BatchNorm after it folded in (see ``fuse_tied``).
    """

    tied_name = 'conv'

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: _IntPair,
                 *,
                 groups: int = 1,
                 bias: bool = True,
                 blocks: int = 1,
                 impl: str = 'fold',
                 **kwargs) -> None:
        super().__init__()
        check_positive_int('groups', groups, owner='TBC')
        name = 'TGC' if groups > 1 else 'TBC'
        for arg, value in (('in_channels', in_channels),
                           ('out_channels', out_channels), ('blocks', blocks)):
            check_positive_int(arg, value, owner=name)
        check_choice('impl', impl, TBC_IMPLS, owner=name)
        check_bool('bias', bias, owner=name)
        for arg, value in (('in_channels', in_channels),
                           ('out_channels', out_channels)):
            check_divisible(arg, value, 'blocks * groups', blocks * groups,
                            owner=name)
        self.blocks = blocks
        self.impl = impl
        self.conv = nn.Conv2d(
            in_channels // blocks,
            out_channels // blocks,
            kernel_size,
            groups=groups,
            bias=bias,
            **kwargs)
        self.geometry = ConvGeometry.of(self.conv)._replace(
            in_channels=in_channels, out_channels=out_channels)

    @property
    def groups(self) -> int:
        return self.conv.groups

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f'{type(self).__name__}: expected an input with '
                f'in_channels={self.in_channels} channels, got {x.shape[1]}')
        if self.blocks == 1:
            return self.conv(x)
        return self.forward_impl(x, self.resolve_impl(x))

    def forward_impl(self, x: Tensor, impl: str) -> Tensor:
        """The layer on ``x`` computed in form ``'fold'`` or ``'grouped'``."""
        if impl == 'grouped':
            conv = self.conv
            bias: Optional[Tensor] = (
                conv.bias.repeat(self.blocks)
                if conv.bias is not None else None)
            return F.conv2d(x, conv.weight.repeat(self.blocks, 1, 1, 1), bias,
                            conv.stride, conv.padding, conv.dilation,
                            conv.groups * self.blocks)
        n, c, h, w = x.shape
        out = self.conv(x.reshape(n * self.blocks, c // self.blocks, h, w))
        return out.reshape(n, self.out_channels, *out.shape[-2:])

    def resolve_impl(self, x: Tensor) -> str:
        """The form, ``'fold'`` or ``'grouped'``, that runs on input ``x``."""
        if self.impl != 'auto':
            return self.impl
        if self.blocks == 1:
            return 'fold'
        conv = self.conv
        key = (tuple(x.shape), x.stride(), x.dtype, x.device,
               tuple(conv.weight.shape), conv.stride, conv.padding,
               conv.dilation, conv.groups, conv.bias is not None, self.blocks)
        impl = FASTEST_TBC_IMPL.get(key)
        if impl is None:
            if (torch.jit.is_tracing() or torch.compiler.is_compiling()
                    or torch.compiler.is_exporting()
                    or torch.onnx.is_in_onnx_export()):
                return 'fold'
            times = self.time_impls(x)
            impl = FASTEST_TBC_IMPL[key] = min(times, key=times.get)
        return impl

    @torch.no_grad()
    def time_impls(self, x: Tensor, rounds: int = 3) -> Dict[str, float]:
        """Seconds of one forward call of each form on ``x``, without grad.

        The forms are timed in turn, one call (after two warm-up calls) per
        round; the shortest time of each form is returned, which other
        processes on a shared machine can only lengthen.
        """
        timers = {
            impl: Timer(
                'layer.forward_impl(x, impl)',
                globals=dict(layer=self, x=x, impl=impl),
                num_threads=torch.get_num_threads())
            for impl in ('fold', 'grouped')
        }
        times = {impl: float('inf') for impl in timers}
        for _ in range(rounds):
            for impl, timer in timers.items():
                times[impl] = min(times[impl], timer.timeit(1).median)
        return times

    @torch.no_grad()
    def fuse(self, norm: Optional[nn.Module] = None) -> nn.Conv2d:
        """The group convolution with ``blocks * groups`` groups computing
        this layer, the thin filter repeated once per block; the BatchNorm
        ``norm`` that follows it, if any, is folded in (each block's output
        channels get their own scale and shift, which is why the result is
        no longer tied). Exact in eval mode."""
        conv = self.conv
        weight, bias = fold_batch_norm(
            conv.weight.repeat(self.blocks, 1, 1, 1),
            None if conv.bias is None else conv.bias.repeat(self.blocks),
            norm)
        return load_weight_bias(
            nn.Conv2d(
                self.in_channels,
                self.out_channels,
                conv.kernel_size,
                stride=conv.stride,
                padding=conv.padding,
                dilation=conv.dilation,
                groups=conv.groups * self.blocks,
                bias=conv.bias is not None or norm is not None,
                padding_mode=conv.padding_mode), weight, bias)

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, '
                f'blocks={self.blocks}, impl={self.impl!r}')


@MODELS.register_module('TFC')
class TiedLinear(TiedModule):
    """Tied block fully connected layer (TFC).

    The ``in_features`` inputs are split into ``blocks`` equal blocks and
    one ``(out_features / B, in_features / B)`` linear map is applied to each
    block; the outputs are concatenated. At ``blocks=1`` it is ``nn.Linear``.

    Args:
        in_features (int): Input features, divisible by ``blocks``.
        out_features (int): Output features, divisible by ``blocks``.
        bias (bool): Whether the tied map has a bias. Defaults to True.
        blocks (int): The block number B. Defaults to 1.

    Its ``weight`` is the tied map, ``(out_features / B, in_features / B)``.
    """

    tied_name = 'linear'

    def __init__(self,
                 in_features: int,
                 out_features: int,
                 bias: bool = True,
                 blocks: int = 1) -> None:
        super().__init__()
        for arg, value in (('in_features', in_features),
                           ('out_features', out_features), ('blocks', blocks)):
            check_positive_int(arg, value, owner='TFC')
        check_bool('bias', bias, owner='TFC')
        for arg, value in (('in_features', in_features),
                           ('out_features', out_features)):
            check_divisible(arg, value, 'blocks', blocks, owner='TFC')
        self.in_features = in_features
        self.out_features = out_features
        self.blocks = blocks
        self.linear = nn.Linear(in_features // blocks, out_features // blocks,
                                bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f'TFC: expected inputs with in_features={self.in_features} '
                f'in the last dimension, got {x.shape[-1]}')
        out = self.linear(
            x.reshape(*x.shape[:-1], self.blocks,
                      self.in_features // self.blocks))
        return out.reshape(*x.shape[:-1], self.out_features)

    @torch.no_grad()
    def fuse(self, norm: Optional[nn.Module] = None) -> nn.Linear:
        """The ``nn.Linear`` computing this layer: the tied map repeated on
        the block diagonal of its weight, and the BatchNorm ``norm`` after
        it, if any, folded in. Exact in eval mode."""
        linear = self.linear
        weight, bias = fold_batch_norm(
            torch.block_diag(*[linear.weight] * self.blocks),
            None if linear.bias is None else linear.bias.repeat(self.blocks),
            norm)
        return load_weight_bias(
            nn.Linear(
                self.in_features,
                self.out_features,
                bias=linear.bias is not None or norm is not None), weight,
            bias)

    def extra_repr(self) -> str:
        return (f'in_features={self.in_features}, '
                f'out_features={self.out_features}, blocks={self.blocks}')
