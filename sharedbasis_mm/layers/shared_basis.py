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
from ..utils.validation import check_bool, check_int, check_positive_int

_IntPair = Union[int, Tuple[int, int]]


class FilterBasis(nn.Module):
    """Filter-basis elements shared by several layers.

    One ``FilterBasis`` object is handed to every layer that shares it, so
    the elements are one Parameter with many users: ``model.parameters()``
    yields it once, and the sharing survives ``deepcopy``, DDP and a
    ``state_dict`` round trip (each user's key loads into the same tensor).
    The elements are orthogonally initialised.

    Args:
        in_channels (int): Input channels S of each element.
        num_elements (int): Number of shared elements n.
        kernel_size (int | tuple[int, int]): Spatial size k of each element.
    """

    def __init__(self, in_channels: int, num_elements: int,
                 kernel_size: _IntPair) -> None:
        super().__init__()
        check_positive_int('in_channels', in_channels, owner='FilterBasis')
        check_positive_int('num_elements', num_elements, owner='FilterBasis')
        self.in_channels = in_channels
        self.num_elements = num_elements
        self.kernel_size = _pair(kernel_size)
        self.weight = nn.Parameter(
            torch.empty(num_elements, in_channels, *self.kernel_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.orthogonal_(self.weight)

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, '
                f'num_elements={self.num_elements}, '
                f'kernel_size={self.kernel_size}')


@MODELS.register_module('BasisConv')
class BasisConv2d(nn.Module):
    """Convolution with the R elements of a filter basis (eq. 8).

    The basis is the union of the n elements of a shared
    :class:`FilterBasis` and ``unique_rank`` elements of this layer's own;
    both are applied in one convolution call. The output has one channel per
    element: the basis responses ``U * W_basis^r`` of eq. 2. With
    ``unique_rank=0`` this is a plain convolution whose whole weight is
    shared, as the shared 3 x 3 convolutions of ResNet50-Shared.

    Registered as the conv layer ``BasisConv`` (``out_channels`` is R).

    Args:
        in_channels (int): Input channels S.
        out_channels (int): The rank R of the basis: the number of elements.
        kernel_size (int | tuple[int, int]): Spatial size k.
        stride (int | tuple[int, int]): Stride. Defaults to 1.
        padding (int | tuple[int, int]): Zero padding. Defaults to 0.
        dilation (int | tuple[int, int]): Dilation. Defaults to 1.
        groups (int): Must be 1. Accepted for the interface of
            ``build_conv_layer``. Defaults to 1.
        bias (bool): Must be False: a basis has no bias. Accepted for the
            interface of ``build_conv_layer``. Defaults to False.
        unique_rank (int): Elements unique to this layer, R - n.
            Defaults to 0.
        shared_basis (FilterBasis, optional): The n = R - unique_rank shared
            elements. If None, the layer creates them itself; other layers
            can then share ``layer.shared_basis``. Defaults to None.
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
                 shared_basis: Optional[FilterBasis] = None) -> None:
        super().__init__()
        rank = check_positive_int('rank', out_channels, owner='BasisConv2d')
        check_positive_int('in_channels', in_channels, owner='BasisConv2d')
        check_int('unique_rank', unique_rank, 0, rank, owner='BasisConv2d')
        check_bool('bias', bias, owner='BasisConv2d')
        if bias:
            raise ValueError('BasisConv2d: a filter basis has no bias, got '
                             'bias=True; expected bias=False')
        if check_int('groups', groups, owner='BasisConv2d') != 1:
            raise ValueError(f'BasisConv2d: a filter basis spans all input '
                             f'channels, got groups={groups}; expected 1')
        kernel_size = _pair(kernel_size)
        num_shared = rank - unique_rank
        if shared_basis is None and num_shared > 0:
            shared_basis = FilterBasis(in_channels, num_shared, kernel_size)
        elif shared_basis is not None:
            self._check_shared_basis(shared_basis, in_channels, num_shared,
                                     kernel_size)
        self.in_channels = in_channels
        self.out_channels = rank
        self.kernel_size = kernel_size
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        # The attributes mmcv's ConvModule exports from its conv.
        self.groups = 1
        self.transposed = False
        self.output_padding = (0, 0)
        self.unique_rank = unique_rank
        self.shared_basis = shared_basis
        if unique_rank > 0:
            self.unique_weight = nn.Parameter(
                torch.empty(unique_rank, in_channels, *kernel_size))
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
                            num_shared: int, kernel_size: Tuple[int,
                                                                int]) -> None:
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

    @classmethod
    def like(cls,
             conv: nn.Conv2d,
             shared_basis: Optional[FilterBasis] = None) -> 'BasisConv2d':
        """A basis convolution with the geometry of a plain ``conv``.

        Its whole weight is shared: ``shared_basis`` if given, else a new
        :class:`FilterBasis` that other layers can share.
        """
        if conv.groups != 1 or conv.bias is not None:
            raise ValueError(
                f'only a convolution without groups and bias can become a '
                f'basis, got groups={conv.groups}, '
                f'bias={conv.bias is not None}')
        return cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            shared_basis=shared_basis).to(conv.weight.device)

    @property
    def weight(self) -> Tensor:
        """The R basis elements, shared first: ``(R, S, k, k)``."""
        if self.shared_basis is None:
            return self.unique_weight
        if self.unique_weight is None:
            return self.shared_basis.weight
        return torch.cat([self.shared_basis.weight, self.unique_weight])

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, None, self.stride, self.padding,
                        self.dilation)

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
        return (f'{self.in_channels}, rank={self.out_channels} '
                f'(shared={num_shared}, unique={self.unique_rank}), '
                f'kernel_size={self.kernel_size}, stride={self.stride}, '
                f'padding={self.padding}, dilation={self.dilation}')


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
        groups (int): Must be 1. Defaults to 1.
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
        check_positive_int('out_channels', out_channels,
                           owner='SharedBasisConv2d')
        check_bool('bias', bias, owner='SharedBasisConv2d')
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
