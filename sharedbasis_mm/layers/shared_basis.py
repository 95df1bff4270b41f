"""Convolutions on a filter basis shared across layers.

Implements the recursive sharing of a filter basis of "Learning Deeply Shared
Filter Bases for Efficient ConvNets" (Learning Deeply Shared Filter Bases, eq. 1-2, 8 and Figure 2a):
a k x k convolution with T filters is factorized into a convolution with R
basis elements followed by 1 x 1 coefficients, ``W_t = sum_r alpha_t^r
W_basis^r``. Of the R elements, n are shared with other layers (a
:class:`FilterBasis`) and R - n are unique to the layer.
"""
from typing import Dict, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.utils import _pair

from ..registry import MODELS
from .tied import check_divisible, check_positive

_IntPair = Union[int, Tuple[int, int]]


class FilterBasis(nn.Module):
    """Filter-basis elements shared by several layers.

    One ``FilterBasis`` object is handed to every layer that shares it, so
    the elements are one Parameter with many users: ``model.parameters()``
    yields it once, and the sharing survives ``deepcopy``, DDP and a
    ``state_dict`` round trip (each user's key loads into the same tensor).
    The elements are orthogonally initialised.

    With ``groups > 1`` the basis is that of a grouped convolution (the
    ResNeXts): element ``r`` sees the ``in_channels / groups`` channels of
    group ``r // (num_elements / groups)``, and ``weight`` is
    ``(n, in_channels / groups, k, k)``.

    Args:
        in_channels (int): Input channels S of each element.
        num_elements (int): Number of shared elements n.
        kernel_size (int | tuple[int, int]): Spatial size k of each element.
        groups (int): Groups of the convolution with the basis.
            Defaults to 1.
    """

    def __init__(self,
                 in_channels: int,
                 num_elements: int,
                 kernel_size: _IntPair,
                 groups: int = 1) -> None:
        super().__init__()
        check_positive('FilterBasis', 'in_channels', in_channels)
        check_positive('FilterBasis', 'num_elements', num_elements)
        check_positive('FilterBasis', 'groups', groups)
        check_divisible('FilterBasis', 'in_channels', in_channels, 'groups',
                        groups)
        check_divisible('FilterBasis', 'num_elements', num_elements,
                        'groups', groups)
        self.in_channels = in_channels
        self.num_elements = num_elements
        self.kernel_size = _pair(kernel_size)
        self.groups = groups
        self.weight = nn.Parameter(
            torch.empty(num_elements, in_channels // groups,
                        *self.kernel_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.orthogonal_(self.weight)

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, '
                f'num_elements={self.num_elements}, '
                f'kernel_size={self.kernel_size}, groups={self.groups}')


@MODELS.register_module('BasisConv')
class BasisConv2d(nn.Module):
    """Convolution with the R elements of a filter basis (eq. 8).

    The basis is the union of the n elements of a shared
    :class:`FilterBasis` and ``unique_rank`` elements of this layer's own;
    both are applied in one convolution call. The output has one channel per
    element: the basis responses ``U * W_basis^r`` of eq. 2. With
    ``unique_rank=0`` this is a plain convolution whose whole weight is
    shared, as the shared 3 x 3 convolutions of ResNet50-Shared.

    A grouped basis (ResNeXt50-S64U4) convolves the shared elements with the
    basis's ``groups`` and the unique ones with ``unique_groups``; the two
    convolutions run separately and their responses are concatenated, shared
    first.

    Registered as the conv layer ``BasisConv`` (``out_channels`` is R).

    Args:
        in_channels (int): Input channels S.
        out_channels (int): The rank R of the basis: the number of elements.
        kernel_size (int | tuple[int, int]): Spatial size k.
        stride (int | tuple[int, int]): Stride. Defaults to 1.
        padding (int | tuple[int, int]): Zero padding. Defaults to 0.
        dilation (int | tuple[int, int]): Dilation. Defaults to 1.
        groups (int): Groups of the convolution with the shared elements
            (those of ``shared_basis``). Defaults to 1.
        bias (bool): Must be False: a basis has no bias. Accepted for the
            interface of ``build_conv_layer``. Defaults to False.
        unique_rank (int): Elements unique to this layer, R - n.
            Defaults to 0.
        shared_basis (FilterBasis, optional): The n = R - unique_rank shared
            elements. If None, the layer creates them itself; other layers
            can then share ``layer.shared_basis``. Defaults to None.
        unique_groups (int, optional): Groups of the convolution with the
            unique elements; None for ``groups``. Defaults to None.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: _IntPair,
                 stride: _IntPair = 1,
                 padding: _IntPair = 0,
                 dilation: _IntPair = 1,
                 groups: int = 1,
                 bias: bool = False,
                 unique_rank: int = 0,
                 shared_basis: Optional[FilterBasis] = None,
                 unique_groups: Optional[int] = None) -> None:
        super().__init__()
        rank = out_channels
        if not isinstance(rank, int) or rank < 1:
            raise ValueError(f'BasisConv2d: the rank R (out_channels) must be '
                             f'an integer >= 1, got rank={rank!r}')
        if not isinstance(unique_rank, int) or not 0 <= unique_rank <= rank:
            raise ValueError(
                f'BasisConv2d: unique_rank must be an integer in [0, rank='
                f'{rank}], got unique_rank={unique_rank!r}')
        if bias:
            raise ValueError('BasisConv2d: a filter basis has no bias, got '
                             'bias=True; expected bias=False')
        unique_groups = groups if unique_groups is None else unique_groups
        check_positive('BasisConv2d', 'unique_groups', unique_groups)
        if unique_rank > 0:
            check_divisible('BasisConv2d', 'in_channels', in_channels,
                            'unique_groups', unique_groups)
            check_divisible('BasisConv2d', 'unique_rank', unique_rank,
                            'unique_groups', unique_groups)
        kernel_size = _pair(kernel_size)
        num_shared = rank - unique_rank
        if shared_basis is None and num_shared > 0:
            shared_basis = FilterBasis(in_channels, num_shared, kernel_size,
                                       groups)
        elif shared_basis is not None:
            self._check_shared_basis(shared_basis, in_channels, num_shared,
                                     kernel_size, groups)
        self.in_channels = in_channels
        self.out_channels = rank
        self.kernel_size = kernel_size
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        # groups is also one of the attributes mmcv's ConvModule exports.
        self.groups = groups
        self.unique_groups = unique_groups
        self.transposed = False
        self.output_padding = (0, 0)
        self.unique_rank = unique_rank
        self.shared_basis = shared_basis
        if unique_rank > 0:
            self.unique_weight = nn.Parameter(
                torch.empty(unique_rank, in_channels // unique_groups,
                            *kernel_size))
            nn.init.orthogonal_(self.unique_weight)
        else:
            self.register_parameter('unique_weight', None)

    def init_weights(self) -> None:
        """Initialise the elements orthogonally, the shared ones included.

        Its presence also keeps mmcv's ``ConvModule`` from Kaiming-
        initialising the basis.
        """
        if self.shared_basis is not None:
            self.shared_basis.reset_parameters()
        if self.unique_weight is not None:
            nn.init.orthogonal_(self.unique_weight)

    @staticmethod
    def _check_shared_basis(basis: FilterBasis, in_channels: int,
                            num_shared: int, kernel_size: Tuple[int, int],
                            groups: int) -> None:
        if not isinstance(basis, FilterBasis):
            raise TypeError(f'BasisConv2d: shared_basis must be a '
                            f'FilterBasis, got {type(basis).__name__}')
        if basis.in_channels != in_channels:
            raise ValueError(
                f'BasisConv2d: in_channels={in_channels} differs from the '
                f'shared basis, whose elements have in_channels='
                f'{basis.in_channels}')
        if basis.kernel_size != kernel_size:
            raise ValueError(
                f'BasisConv2d: kernel_size={kernel_size} differs from the '
                f'shared basis, whose kernel_size is {basis.kernel_size}')
        if basis.num_elements != num_shared:
            raise ValueError(
                f'BasisConv2d: rank - unique_rank={num_shared} shared '
                f'elements expected, but the shared basis has '
                f'num_elements={basis.num_elements}')
        if basis.groups != groups:
            raise ValueError(
                f'BasisConv2d: groups={groups} differs from the shared '
                f'basis, whose groups is {basis.groups}')

    @classmethod
    def like(cls,
             conv: nn.Conv2d,
             shared_basis: Optional[FilterBasis] = None) -> 'BasisConv2d':
        """A basis convolution with the geometry of a plain ``conv``.

        Its whole weight is shared: ``shared_basis`` if given, else a new
        :class:`FilterBasis` that other layers can share.
        """
        if conv.bias is not None:
            raise ValueError('only a convolution without bias can become a '
                             'basis, got bias=True')
        return cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            groups=conv.groups,
            shared_basis=shared_basis).to(conv.weight.device)

    @property
    def weight(self) -> Tensor:
        """The R basis elements, shared first: ``(R, S, k, k)``.

        A grouped part is spread over all S input channels, zero outside its
        group, so this is the weight of one ungrouped convolution that
        computes the layer.
        """
        parts = []
        if self.shared_basis is not None:
            parts.append(_ungrouped(self.shared_basis.weight, self.groups))
        if self.unique_weight is not None:
            parts.append(_ungrouped(self.unique_weight, self.unique_groups))
        return torch.cat(parts) if len(parts) > 1 else parts[0]

    def forward(self, x: Tensor) -> Tensor:
        if self.groups == self.unique_groups == 1:
            return F.conv2d(x, self.weight, None, self.stride, self.padding,
                            self.dilation)
        parts = []
        if self.shared_basis is not None:
            parts.append((self.shared_basis.weight, self.groups))
        if self.unique_weight is not None:
            parts.append((self.unique_weight, self.unique_groups))
        return torch.cat([
            F.conv2d(x, weight, None, self.stride, self.padding,
                     self.dilation, groups) for weight, groups in parts
        ], 1)

    def fuse(self) -> nn.Conv2d:
        """A plain ``nn.Conv2d`` holding a copy of the basis."""
        conv = nn.Conv2d(
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            bias=False)
        conv.weight.data.copy_(self.weight.detach())
        return conv.to(self.weight.device)

    def extra_repr(self) -> str:
        num_shared = self.out_channels - self.unique_rank
        groups = ('' if self.groups == self.unique_groups == 1 else
                  f', groups={self.groups}, unique_groups='
                  f'{self.unique_groups}')
        return (f'{self.in_channels}, rank={self.out_channels} '
                f'(shared={num_shared}, unique={self.unique_rank}), '
                f'kernel_size={self.kernel_size}, stride={self.stride}, '
                f'padding={self.padding}, dilation={self.dilation}{groups}')


def _ungrouped(weight: Tensor, groups: int) -> Tensor:
    """The ``(R, S, k, k)`` weight of one ungrouped convolution equal to
    the convolution with ``weight`` ``(R, S / groups, k, k)`` and
    ``groups``."""
    if groups == 1:
        return weight
    out_per_group = weight.shape[0] // groups
    return torch.cat([
        F.pad(weight[g * out_per_group:(g + 1) * out_per_group],
              (0, 0, 0, 0, g * weight.shape[1],
               (groups - 1 - g) * weight.shape[1])) for g in range(groups)
    ])


@MODELS.register_module('SharedBasisConv')
class SharedBasisConv2d(nn.Module):
    """A convolution factorized into a filter basis and coefficients.

    ``x -> BasisConv2d (R elements, n shared) -> norm over the R responses ->
    1 x 1 coefficients R -> T``, as in Figure 2a of Learning Deeply Shared Filter Bases. With the norm
    set to identity it equals a plain convolution with the reconstructed
    filters ``W_t = sum_r alpha_t^r W_basis^r`` (eq. 1). :meth:`fuse` turns a
    trained layer into that plain convolution.

    Registered as the conv layer ``SharedBasisConv``, so a ``conv_cfg`` such
    as ``dict(type='SharedBasisConv', rank=49, unique_rank=1)`` builds it.

    Args:
        in_channels (int): Input channels S.
        out_channels (int): Output channels T.
        kernel_size (int | tuple[int, int]): Spatial size k.
        stride (int | tuple[int, int]): Stride. Defaults to 1.
        padding (int | tuple[int, int]): Zero padding. Defaults to 0.
        dilation (int | tuple[int, int]): Dilation. Defaults to 1.
        groups (int): Groups of the basis convolution. Defaults to 1.
        bias (bool): Whether the coefficients have a bias. Defaults to False.
        rank (int): The rank R of the basis. Required.
        unique_rank (int): Elements unique to this layer. Defaults to 0.
        shared_basis (FilterBasis, optional): The R - unique_rank shared
            elements; created by the layer if None. Defaults to None.
        norm_cfg (dict, optional): The norm over the R basis responses
            (unshared, one per layer). None for no norm.
            Defaults to ``dict(type='BN')``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: _IntPair,
                 stride: _IntPair = 1,
                 padding: _IntPair = 0,
                 dilation: _IntPair = 1,
                 groups: int = 1,
                 bias: bool = False,
                 *,
                 rank: int,
                 unique_rank: int = 0,
                 shared_basis: Optional[FilterBasis] = None,
                 norm_cfg: Optional[Dict] = dict(type='BN')) -> None:
        super().__init__()
        check_positive('SharedBasisConv2d', 'out_channels', out_channels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.basis = BasisConv2d(
            in_channels,
            rank,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            unique_rank=unique_rank,
            shared_basis=shared_basis)
        self.norm = build_norm_layer(norm_cfg, rank)[1] if norm_cfg else None
        self.coefficients = nn.Conv2d(rank, out_channels, 1, bias=bias)

    @property
    def rank(self) -> int:
        return self.basis.out_channels

    @property
    def shared_basis(self) -> Optional[FilterBasis]:
        return self.basis.shared_basis

    def forward(self, x: Tensor) -> Tensor:
        x = self.basis(x)
        if self.norm is not None:
            x = self.norm(x)
        return self.coefficients(x)

    @torch.no_grad()
    def fuse(self) -> nn.Conv2d:
        """One plain convolution with bias computing this layer in eval mode.

        The norm's running statistics are folded in, so the result equals
        the layer's output in eval mode (in train mode, the layer normalises
        with batch statistics, which no fixed convolution reproduces).
        """
        coefficients = self.coefficients.weight[:, :, 0, 0]
        bias = (
            self.coefficients.bias.clone() if self.coefficients.bias
            is not None else coefficients.new_zeros(self.out_channels))
        if self.norm is not None:
            scale, shift = batch_norm_scale_shift(self.norm)
            bias += coefficients @ shift
            coefficients = coefficients * scale
        basis = self.basis
        conv = nn.Conv2d(
            self.in_channels,
            self.out_channels,
            basis.kernel_size,
            stride=basis.stride,
            padding=basis.padding,
            dilation=basis.dilation,
            bias=True).to(coefficients.device)
        conv.weight.copy_(
            torch.einsum('tr,rskl->tskl', coefficients, basis.weight))
        conv.bias.copy_(bias)
        return conv


def batch_norm_scale_shift(norm: nn.Module) -> Tuple[Tensor, Tensor]:
    """The per-channel ``(scale, shift)`` of a BatchNorm in eval mode.

    ``norm(x) == x * scale + shift`` channel-wise, with its running
    statistics.
    """
    if not isinstance(norm, _BatchNorm):
        raise TypeError(f'only a BatchNorm folds into a convolution, got '
                        f'{type(norm).__name__}')
    if norm.running_var is None:
        raise ValueError(f'{type(norm).__name__} has no running statistics '
                         f'(track_running_stats=False) to fold into a '
                         f'convolution')
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -norm.running_mean * scale
    if norm.bias is not None:
        shift = shift + norm.bias
    return scale, shift
