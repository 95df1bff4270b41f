"""Convolutions on a filter basis shared across layers.

Implements the recursive sharing of a filter basis of "Learning Deeply Shared
Filter Bases for Efficient ConvNets" (Learning Deeply Shared Filter Bases, eq. 1-2, 8 and Figure 2a):
a k x k convolution with T filters is factorized into a convolution with R
basis elements followed by 1 x 1 coefficients, ``W_t = sum_r alpha_t^r
W_basis^r``. Of the R elements, n are shared with other layers (one
Parameter made by :func:`make_filter_basis`, registered once by its owner)
and R - n are unique to the layer.
"""
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_conv_layer, build_norm_layer
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.utils import _pair

from ..registry import MODELS
from ..utils.validation import (check_bool, check_divisible, check_int,
                                check_positive_int)

_IntPair = Union[int, Tuple[int, int]]


def make_filter_basis(in_channels: int,
                      num_elements: int,
                      kernel_size: _IntPair,
                      groups: int = 1) -> nn.Parameter:
    """A new filter basis: ``num_elements`` orthogonal elements.

    A basis is one ``nn.Parameter`` of shape ``(n, S, k, k)``. One module
    registers it (its owner: the residual group of a backbone, or the layer
    that created it); every layer it is handed to uses it without
    registering it again, so the state dict, ``named_parameters``, EMA and
    optimizers see it once.

    With ``groups > 1`` it is the basis of a grouped convolution (the
    ResNeXts), ``(n, S / groups, k, k)``: element ``r`` sees the channels of
    group ``r // (n / groups)``.

    Args:
        in_channels (int): Input channels S of each element.
        num_elements (int): Number of shared elements n.
        kernel_size (int | tuple[int, int]): Spatial size k of each element.
        groups (int): Groups of the convolution with the basis.
            Defaults to 1.
    """
    owner = 'make_filter_basis'
    check_positive_int('in_channels', in_channels, owner=owner)
    check_positive_int('num_elements', num_elements, owner=owner)
    check_positive_int('groups', groups, owner=owner)
    check_divisible('in_channels', in_channels, 'groups', groups, owner=owner)
    check_divisible('num_elements', num_elements, 'groups', groups,
                    owner=owner)
    basis = nn.Parameter(
        torch.empty(num_elements, in_channels // groups, *_pair(kernel_size)))
    nn.init.orthogonal_(basis)
    return basis


def check_basis_conv_cfg(owner: str, conv_cfg: Optional[Dict]) -> None:
    """Raise a ValueError if ``conv_cfg`` cannot build a shared-basis layer.

    A shared basis is a plain convolution weight used by several layers, so
    only the plain convolution applies to it and to its coefficients.
    """
    if conv_cfg is None:
        return
    if not isinstance(conv_cfg, dict) or conv_cfg.get('type') not in (
            'Conv', 'Conv2d', nn.Conv2d) or len(conv_cfg) != 1:
        raise ValueError(
            f'{owner}: conv_cfg={conv_cfg!r} cannot apply to a shared filter '
            f'basis and its coefficients; expected None, dict(type="Conv") '
            f'or dict(type="Conv2d")')


@MODELS.register_module('BasisConv')
class BasisConv2d(nn.Module):
    """Convolution with the R elements of a filter basis (eq. 8).

    The basis is the union of the n shared elements (``shared_basis``, a
    Parameter from :func:`make_filter_basis`) and ``unique_rank`` elements
    of this layer's own; both are applied in one convolution call. The
    output has one channel per element: the basis responses
    ``U * W_basis^r`` of eq. 2. With ``unique_rank=0`` this is a plain
    convolution whose whole weight is shared, as the shared 3 x 3
    convolutions of ResNet50-Shared.

    A grouped basis (ResNeXt50-S64U4) convolves the shared elements with
    ``groups`` and the unique ones with ``unique_groups``; the two
    convolutions run separately and their responses are concatenated, shared
    first.

    A layer that creates its shared elements registers them (state-dict key
    ``shared_basis``); a layer given them uses them without registering
    them: their owner (the module that registered them) stores them once.

    Registered as the conv layer ``BasisConv`` (``out_channels`` is R).

    Args:
        in_channels (int): Input channels S.
        out_channels (int): The rank R of the basis: the number of elements.
        kernel_size (int | tuple[int, int]): Spatial size k.
        stride (int | tuple[int, int]): Stride. Defaults to 1.
        padding (int | tuple[int, int]): Zero padding. Defaults to 0.
        dilation (int | tuple[int, int]): Dilation. Defaults to 1.
        groups (int): Groups of the convolution with the shared elements.
            Defaults to 1.
        bias (bool): Must be False: a basis has no bias. Accepted for the
            interface of ``build_conv_layer``. Defaults to False.
        unique_rank (int): Elements unique to this layer, R - n.
            Defaults to 0.
        shared_basis (nn.Parameter, optional): The n = R - unique_rank
            shared elements, ``(n, S / groups, k, k)``, registered by another
            module. If None, the layer creates and registers them; other
            layers can then share ``layer.shared_basis``. Defaults to None.
        unique_groups (int, optional): Groups of the convolution with the
            unique elements; None for ``groups``. Defaults to None.
    """

    # Version 2: the layer registers only a basis it created, as the
    # Parameter ``shared_basis`` (version 1: ``shared_basis.weight``, also
    # in every layer given it).
    _version = 2

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
                 shared_basis: Optional[nn.Parameter] = None,
                 unique_groups: Optional[int] = None) -> None:
        super().__init__()
        rank = check_positive_int('rank', out_channels, owner='BasisConv2d')
        check_positive_int('in_channels', in_channels, owner='BasisConv2d')
        check_int('unique_rank', unique_rank, 0, rank, owner='BasisConv2d')
        check_bool('bias', bias, owner='BasisConv2d')
        if bias:
            raise ValueError('BasisConv2d: a filter basis has no bias, got '
                             'bias=True; expected bias=False')
        unique_groups = groups if unique_groups is None else unique_groups
        check_positive_int('groups', groups, owner='BasisConv2d')
        check_positive_int('unique_groups', unique_groups, owner='BasisConv2d')
        if unique_rank > 0:
            check_divisible('in_channels', in_channels, 'unique_groups',
                            unique_groups, owner='BasisConv2d')
            check_divisible('unique_rank', unique_rank, 'unique_groups',
                            unique_groups, owner='BasisConv2d')
        kernel_size = _pair(kernel_size)
        num_shared = rank - unique_rank
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
        if shared_basis is None:
            self.register_parameter(
                'shared_basis',
                make_filter_basis(in_channels, num_shared, kernel_size,
                                  groups) if num_shared > 0 else None)
        else:
            self._check_shared_basis(shared_basis, in_channels, num_shared,
                                     kernel_size, groups)
            self._use_shared_basis(shared_basis)
        if unique_rank > 0:
            # the unique elements follow a given basis' dtype and device, so
            # that both concatenate into one weight in forward
            like = {} if shared_basis is None else dict(
                dtype=shared_basis.dtype, device=shared_basis.device)
            self.unique_weight = nn.Parameter(
                torch.empty(unique_rank, in_channels // unique_groups,
                            *kernel_size, **like))
            nn.init.orthogonal_(self.unique_weight)
        else:
            self.register_parameter('unique_weight', None)

    def _use_shared_basis(self, basis: nn.Parameter) -> None:
        """Use ``basis`` without registering it: a plain attribute."""
        object.__setattr__(self, 'shared_basis', basis)

    @property
    def owns_shared_basis(self) -> bool:
        """Whether this layer registers its shared elements."""
        return self._parameters.get('shared_basis') is not None

    def release_shared_basis(self) -> nn.Parameter:
        """Hand the shared elements over to another owner.

        The layer keeps using them but no longer registers them; the caller
        registers the returned Parameter.
        """
        if not self.owns_shared_basis:
            raise ValueError('BasisConv2d: this layer does not own a shared '
                             'basis to release')
        basis = self._parameters.pop('shared_basis')
        self._use_shared_basis(basis)
        return basis

    def init_weights(self) -> None:
        """Initialise the elements orthogonally: the unique ones, and the
        shared ones if this layer owns them (else their owner does).

        Its presence also keeps mmcv's ``ConvModule`` from Kaiming-
        initialising the basis.
        """
        with torch.no_grad():
            if self.owns_shared_basis:
                nn.init.orthogonal_(self.shared_basis)
            if self.unique_weight is not None:
                nn.init.orthogonal_(self.unique_weight)

    @staticmethod
    def _check_shared_basis(basis: nn.Parameter, in_channels: int,
                            num_shared: int, kernel_size: Tuple[int, int],
                            groups: int) -> None:
        if not isinstance(basis, nn.Parameter) or basis.dim() != 4:
            raise TypeError(
                f'BasisConv2d: shared_basis must be an nn.Parameter of shape '
                f'(n, in_channels, k, k) ((n, in_channels / groups, k, k) '
                f'with groups) as make_filter_basis makes, got '
                f'{type(basis).__name__}')
        if basis.shape[1] * groups != in_channels:
            per_group = (f' per group of groups={groups} (expected '
                         f'{in_channels / groups:g})' if groups > 1 else '')
            raise ValueError(
                f'BasisConv2d: in_channels={in_channels} differs from the '
                f'shared basis, whose elements have in_channels='
                f'{basis.shape[1]}{per_group}')
        if tuple(basis.shape[2:]) != kernel_size:
            raise ValueError(
                f'BasisConv2d: kernel_size={kernel_size} differs from the '
                f'shared basis, whose kernel_size is {tuple(basis.shape[2:])}')
        if basis.shape[0] != num_shared:
            raise ValueError(
                f'BasisConv2d: rank - unique_rank={num_shared} shared '
                f'elements expected, but the shared basis has '
                f'{basis.shape[0]} elements')

    @classmethod
    def like(cls,
             conv: nn.Conv2d,
             shared_basis: Optional[nn.Parameter] = None) -> 'BasisConv2d':
        """A basis convolution with the geometry of a plain ``conv``.

        Its whole weight is shared: ``shared_basis`` if given, else a new
        basis that the layer registers and other layers can share.
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
            parts.append(_ungrouped(self.shared_basis, self.groups))
        if self.unique_weight is not None:
            parts.append(_ungrouped(self.unique_weight, self.unique_groups))
        return torch.cat(parts) if len(parts) > 1 else parts[0]

    def forward(self, x: Tensor) -> Tensor:
        if self.groups == self.unique_groups == 1:
            return F.conv2d(x, self.weight, None, self.stride, self.padding,
                            self.dilation)
        parts = []
        if self.shared_basis is not None:
            parts.append((self.shared_basis, self.groups))
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

    def _load_from_state_dict(self, state_dict: dict, prefix: str,
                              local_metadata: dict, *args) -> None:
        """Load, upgrading a version-1 state dict of a layer owning its basis.

        Version 1 stored the shared elements as ``shared_basis.weight``;
        version 2 as ``shared_basis``.
        """
        if local_metadata.get('version', 1) < 2 and self.owns_shared_basis:
            old = prefix + 'shared_basis.weight'
            if old in state_dict and prefix + 'shared_basis' not in state_dict:
                state_dict[prefix + 'shared_basis'] = state_dict.pop(old)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      *args)

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
    1 x 1 coefficients R -> T``, as in Figure 2a of Learning Deeply Shared
    Filter Bases. With the norm set to identity it equals a plain
    convolution with the reconstructed filters
    ``W_t = sum_r alpha_t^r W_basis^r`` (eq. 1). :meth:`fuse` turns a
    trained layer into that plain convolution.

    Registered as the conv layer ``SharedBasisConv``, so a ``conv_cfg`` such
    as ``dict(type='SharedBasisConv', rank=49, unique_rank=1)`` builds it
    wherever mmcv builds a convolution, mmcv's ``ConvModule`` included (it
    has the attributes ``ConvModule`` reads from its conv).

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
        shared_basis (nn.Parameter, optional): The R - unique_rank shared
            elements, registered by another module; created (and
            registered) by the layer if None. Defaults to None.
        norm_cfg (dict, optional): The norm over the R basis responses
            (unshared, one per layer). None for no norm.
            Defaults to ``dict(type='BN')``.
        conv_cfg (dict, optional): The conv layer of the 1 x 1
            coefficients: None or the plain ``Conv``/``Conv2d`` (see
            :func:`check_basis_conv_cfg`). Defaults to None.
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
                 shared_basis: Optional[nn.Parameter] = None,
                 norm_cfg: Optional[Dict] = dict(type='BN'),
                 conv_cfg: Optional[Dict] = None) -> None:
        super().__init__()
        check_positive_int('out_channels', out_channels,
                           owner='SharedBasisConv2d')
        check_bool('bias', bias, owner='SharedBasisConv2d')
        check_basis_conv_cfg('SharedBasisConv2d', conv_cfg)
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
        self.coefficients = build_conv_layer(
            conv_cfg, rank, out_channels, 1, bias=bias)
        # The attributes mmcv's ConvModule exports from its conv.
        self.groups = 1
        self.transposed = False
        self.output_padding = (0, 0)

    @property
    def rank(self) -> int:
        return self.basis.out_channels

    @property
    def shared_basis(self) -> Optional[nn.Parameter]:
        return self.basis.shared_basis

    @property
    def kernel_size(self) -> Tuple[int, int]:
        return self.basis.kernel_size

    @property
    def stride(self) -> Tuple[int, int]:
        return self.basis.stride

    @property
    def padding(self) -> Tuple[int, int]:
        return self.basis.padding

    @property
    def dilation(self) -> Tuple[int, int]:
        return self.basis.dilation

    def init_weights(self) -> None:
        """Initialise the basis as :meth:`BasisConv2d.init_weights` (the
        coefficients and the norm keep PyTorch's initialisation).

        Its presence also keeps mmcv's ``ConvModule`` from Kaiming-
        initialising the layer.
        """
        self.basis.init_weights()

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


class SharedBasisSequential(nn.Sequential):
    """Blocks in sequence that own the filter bases they share.

    A residual group registers each basis its blocks share as a Parameter of
    its own (``own_basis``), e.g. ``layer1.shared_basis``; the blocks use it
    without registering it. Being an ``nn.Sequential`` of the blocks only,
    it iterates, indexes and runs as one.

    Loading upgrades a version-1 state dict (before version 2, every layer
    using a basis stored a copy, ``<layer>.shared_basis.weight``): the
    copies of each basis must be equal and become its one key; copies that
    differ raise an error naming their keys (the checkpoint shares its
    bases otherwise than this model). A state dict holding plain
    convolution weights where this group's layers share a basis (a plain
    ResNet checkpoint) gets an error message saying how to get a
    compatible checkpoint.
    """

    _version = 2

    def own_basis(self, name: str, layer: BasisConv2d) -> None:
        """Register the basis that ``layer`` created as ``name``."""
        self.register_parameter(name, layer.release_shared_basis())

    def basis_users(self) -> Dict[str, List[str]]:
        """For each owned basis, the names of the layers using it."""
        names = {id(p): n for n, p in self.named_parameters(recurse=False)}
        users: Dict[str, List[str]] = {name: [] for name in names.values()}
        for name, module in self.named_modules():
            if isinstance(module, BasisConv2d) and id(
                    module.shared_basis) in names:
                users[names[id(module.shared_basis)]].append(name)
        return users

    def _load_from_state_dict(self, state_dict: dict, prefix: str,
                              local_metadata: dict, strict: bool,
                              missing_keys: List[str],
                              unexpected_keys: List[str],
                              error_msgs: List[str]) -> None:
        users = self.basis_users()
        if local_metadata.get('version', 1) < 2:
            self._upgrade_from_version_1(state_dict, prefix, users,
                                         error_msgs)
        self._explain_plain_checkpoint(state_dict, prefix, error_msgs)
        owned = dict(self.named_parameters(recurse=False))
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
        # load_state_dict(assign=True) replaces the Parameters: hand the new
        # ones to the layers using them.
        for name, new in self.named_parameters(recurse=False):
            if new is not owned[name]:
                for user in users[name]:
                    self.get_submodule(user)._use_shared_basis(new)

    @staticmethod
    def _upgrade_from_version_1(state_dict: dict, prefix: str,
                                users: Dict[str, List[str]],
                                error_msgs: List[str]) -> None:
        for name, user_names in users.items():
            old_keys = [
                f'{prefix}{user}.shared_basis.weight' for user in user_names
                if f'{prefix}{user}.shared_basis.weight' in state_dict
            ]
            if not old_keys or prefix + name in state_dict:
                continue
            copies = [state_dict[key] for key in old_keys]
            differing = [
                key for key, copy in zip(old_keys, copies)
                if copy.shape != copies[0].shape or not torch.equal(
                    copy, copies[0])
            ]
            if differing:
                error_msgs.append(
                    f'the copies of the shared basis {prefix}{name} differ in '
                    f'the checkpoint: {old_keys[0]} and '
                    f'{", ".join(differing)} (is it of another sharing '
                    f'layout, e.g. another num_bases or share?)')
                continue
            for key in old_keys:
                del state_dict[key]
            state_dict[prefix + name] = copies[0]

    def _explain_plain_checkpoint(self, state_dict: dict, prefix: str,
                                  error_msgs: List[str]) -> None:
        missing = [
            prefix + name for name, _ in self.named_parameters(recurse=False)
            if prefix + name not in state_dict
        ]
        plain = [
            f'{prefix}{name}.weight' for name, module in self.named_modules()
            if isinstance(module, (BasisConv2d, SharedBasisConv2d))
            and f'{prefix}{name}.weight' in state_dict
        ]
        if missing and plain:
            error_msgs.append(
                f'the checkpoint holds plain convolution weights ({plain[0]}'
                f', ...) where the layers share filter bases, and not the '
                f'bases ({", ".join(missing)}): it is a plain ResNet '
                f'checkpoint (or a fused one, which loads into deploy=True). '
                f'A shared-basis backbone loads checkpoints of its own '
                f'layout: train one, convert a shared-basis '
                f'classifier checkpoint with '
                f'tools/model_converters/convert_cls_checkpoint.py, '
                f'or the authors\' pretrained weights with '
                f'tools/model_converters/net_rl2_to_mmpretrain.py')


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
