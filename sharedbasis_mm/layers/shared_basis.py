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
from torch.nn.modules.utils import _pair

from ..registry import MODELS
from ..utils.deprecation import warn_deprecated
from ..utils.validation import (check_bool, check_divisible, check_int,
                                check_positive_int, is_integer)
from .conv_attributes import ConvGeometry, ConvModuleAttributes

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


def check_basis_norm_groups(norm_cfg: Optional[Dict], rank: int,
                            rank_name: str, owner: str) -> None:
    """Raise a ValueError if the norm over a basis' ``rank`` responses
    splits them into groups (``num_groups``, as GroupNorm) that do not
    divide ``rank``.

    Args:
        norm_cfg (dict, optional): The norm config over the responses.
        rank (int): The number of responses R.
        rank_name (str): What R is called where it was given
            (``'shared_rank + unique_rank'``...).
        owner (str): The class the message names.
    """
    num_groups = (norm_cfg or {}).get('num_groups')
    if is_integer(num_groups) and num_groups > 0 and rank % num_groups:
        raise ValueError(
            f'{owner}: {rank_name}={rank} basis responses cannot be split '
            f'into the num_groups={num_groups} groups of the norm after the '
            f'basis ({norm_cfg!r}); expected a rank divisible by '
            f'num_groups, or another norm')


@MODELS.register_module('BasisConv')
class BasisConv2d(ConvModuleAttributes, nn.Module):
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

    The shared elements have one owner, the module that registers them: the
    group of blocks that made them and hands them to its layers (which use
    them without registering them), or this layer when it is built without
    ``shared_basis`` (then it creates them, state-dict key
    ``shared_basis``, and other layers can share ``layer.shared_basis``).

    Registered as the conv layer ``BasisConv`` (``out_channels`` is R).

    Args:
        in_channels (int): Input channels S.
        out_channels (int): The rank R of the basis: the number of elements,
            ``shared_rank + unique_rank``.
        kernel_size (int | tuple[int, int]): Spatial size k.
        stride (int | tuple[int, int]): Stride. Defaults to 1.
        padding (int | tuple[int, int]): Zero padding. Defaults to 0.
        dilation (int | tuple[int, int]): Dilation. Defaults to 1.
        groups (int): Groups of the convolution with the shared elements.
            Defaults to 1.
        bias (bool): Must be False: a basis has no bias. Accepted for the
            interface of ``build_conv_layer``. Defaults to False.
        unique_rank (int): Elements unique to this layer. Defaults to 0.
        shared_basis (nn.Parameter, optional): The ``R - unique_rank``
            shared elements, ``(n, S / groups, k, k)``, registered by another
            module. If None, the layer creates and registers them.
            Defaults to None.
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
                 shared_basis: Optional[nn.Parameter] = None,
                 unique_groups: Optional[int] = None) -> None:
        super().__init__()
        owner = 'BasisConv2d'
        rank = check_positive_int('rank', out_channels, owner=owner)
        check_positive_int('in_channels', in_channels, owner=owner)
        check_int('unique_rank', unique_rank, 0, rank, owner=owner)
        check_bool('bias', bias, owner=owner)
        if bias:
            raise ValueError('BasisConv2d: a filter basis has no bias, got '
                             'bias=True; expected bias=False')
        unique_groups = groups if unique_groups is None else unique_groups
        check_positive_int('groups', groups, owner=owner)
        check_positive_int('unique_groups', unique_groups, owner=owner)
        if unique_rank > 0:
            check_divisible('in_channels', in_channels, 'unique_groups',
                            unique_groups, owner=owner)
            check_divisible('unique_rank', unique_rank, 'unique_groups',
                            unique_groups, owner=owner)
        self.geometry = ConvGeometry(in_channels, rank, _pair(kernel_size),
                                     _pair(stride), _pair(padding),
                                     _pair(dilation))
        self.groups = groups
        self.unique_groups = unique_groups
        self.shared_rank = rank - unique_rank
        self.unique_rank = unique_rank
        if shared_basis is None:
            self.register_parameter(
                'shared_basis',
                make_filter_basis(in_channels, self.shared_rank,
                                  self.kernel_size, groups)
                if self.shared_rank > 0 else None)
        else:
            self._check_shared_basis(shared_basis, groups)
            self._use_shared_basis(shared_basis)
        if unique_rank > 0:
            # the unique elements follow a given basis' dtype and device, so
            # that both concatenate into one weight in forward
            like = {} if shared_basis is None else dict(
                dtype=shared_basis.dtype, device=shared_basis.device)
            self.unique_weight = nn.Parameter(
                torch.empty(unique_rank, in_channels // unique_groups,
                            *self.kernel_size, **like))
            nn.init.orthogonal_(self.unique_weight)
        else:
            self.register_parameter('unique_weight', None)

    def _use_shared_basis(self, basis: nn.Parameter) -> None:
        """Use ``basis`` without registering it: a plain attribute."""
        object.__setattr__(self, 'shared_basis', basis)

    @property
    def owns_shared_basis(self) -> bool:
        """Whether this layer registers its shared elements (it was built
        without ``shared_basis``)."""
        return self._parameters.get('shared_basis') is not None

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

    def _check_shared_basis(self, basis: nn.Parameter, groups: int) -> None:
        in_channels = self.in_channels
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
        if tuple(basis.shape[2:]) != self.kernel_size:
            raise ValueError(
                f'BasisConv2d: kernel_size={self.kernel_size} differs from '
                f'the shared basis, whose kernel_size is '
                f'{tuple(basis.shape[2:])}')
        if basis.shape[0] != self.shared_rank:
            raise ValueError(
                f'BasisConv2d: shared_rank={self.shared_rank} shared elements '
                f'expected (rank - unique_rank), but the shared basis has '
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
            **ConvGeometry.of(conv)._asdict(),
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
        conv = nn.Conv2d(**self.geometry._asdict(), bias=False)
        conv.weight.data.copy_(self.weight.detach())
        return conv.to(self.weight.device)

    def extra_repr(self) -> str:
        groups = ('' if self.groups == self.unique_groups == 1 else
                  f', groups={self.groups}, unique_groups='
                  f'{self.unique_groups}')
        return (f'{self.in_channels}, rank={self.out_channels} '
                f'(shared={self.shared_rank}, unique={self.unique_rank}), '
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
class SharedBasisConv2d(ConvModuleAttributes, nn.Module):
    """A convolution factorized into a filter basis and coefficients.

    ``x -> BasisConv2d (R = n + u elements, n shared) -> norm over the R
    responses -> 1 x 1 coefficients R -> T``, as in Figure 2a of Learning
    Deeply Shared Filter Bases. With the norm set to identity it equals a
    plain convolution with the reconstructed filters
    ``W_t = sum_r alpha_t^r W_basis^r`` (eq. 1). :meth:`fuse` turns a
    trained layer into that plain convolution.

    Registered as the conv layer ``SharedBasisConv``, so a ``conv_cfg`` such
    as ``dict(type='SharedBasisConv', shared_rank=48, unique_rank=1)`` builds
    it wherever mmcv builds a convolution, mmcv's ``ConvModule`` included (it
    has the attributes ``ConvModule`` reads from its conv).

    Args:
        in_channels (int): Input channels S.
        out_channels (int): Output channels T.
        kernel_size (int | tuple[int, int]): Spatial size k.
        bias (bool): Whether the coefficients have a bias. Defaults to False.
        shared_rank (int, optional): The shared elements n; required without
            ``shared_basis``, whose number of elements it is otherwise.
            Defaults to None.
        unique_rank (int): The elements u unique to this layer.
            Defaults to 0.
        shared_basis (nn.Parameter, optional): The n shared elements,
            registered by another module; created (and registered) by the
            layer if None. Defaults to None.
        norm_cfg (dict, optional): The norm over the R basis responses
            (unshared, one per layer). None for no norm.
            Defaults to ``dict(type='BN')``.
        conv_cfg (dict, optional): The conv layer of the 1 x 1
            coefficients: None or the plain ``Conv``/``Conv2d`` (see
            :func:`check_basis_conv_cfg`). Defaults to None.
        rank (int, optional): Deprecated: the rank R, for
            ``shared_rank = rank - unique_rank``. Defaults to None.
        **kwargs: ``stride``, ``padding``, ``dilation`` and ``groups`` of
            the basis convolution, as :class:`BasisConv2d` takes them.
    """

    # The layer as a whole is one ungrouped convolution (see fuse).
    groups = 1

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: _IntPair,
                 *,
                 bias: bool = False,
                 shared_rank: Optional[int] = None,
                 unique_rank: int = 0,
                 shared_basis: Optional[nn.Parameter] = None,
                 norm_cfg: Optional[Dict] = dict(type='BN'),
                 conv_cfg: Optional[Dict] = None,
                 rank: Optional[int] = None,
                 **kwargs) -> None:
        super().__init__()
        owner = 'SharedBasisConv2d'
        check_positive_int('out_channels', out_channels, owner=owner)
        check_bool('bias', bias, owner=owner)
        check_basis_conv_cfg(owner, conv_cfg)
        if rank is not None:
            # BasisConv2d checks rank and unique_rank <= rank
            warn_deprecated('SharedBasisConv2d(rank=R)',
                            'shared_rank=R - unique_rank')
        else:
            check_int('unique_rank', unique_rank, 0, owner=owner)
            if shared_rank is None and isinstance(shared_basis,
                                                  nn.Parameter):
                shared_rank = shared_basis.shape[0]
            elif shared_rank is None:
                raise ValueError(f'{owner}: shared_rank is required without '
                                 f'a shared_basis; expected the number of '
                                 f'shared elements (0 for none)')
            check_int('shared_rank', shared_rank, 0 if unique_rank else 1,
                      owner=owner)
            rank = shared_rank + unique_rank
        self.basis = BasisConv2d(
            in_channels,
            rank,
            kernel_size,
            unique_rank=unique_rank,
            shared_basis=shared_basis,
            **kwargs)
        check_basis_norm_groups(norm_cfg, rank, 'shared_rank + unique_rank',
                                owner)
        self.geometry = self.basis.geometry._replace(
            out_channels=out_channels)
        self.norm = build_norm_layer(norm_cfg, rank)[1] if norm_cfg else None
        self.coefficients = build_conv_layer(
            conv_cfg, rank, out_channels, 1, bias=bias)

    @property
    def rank(self) -> int:
        """The rank R of the basis, ``shared_rank + unique_rank``."""
        return self.basis.out_channels

    @property
    def shared_basis(self) -> Optional[nn.Parameter]:
        return self.basis.shared_basis

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
        # imported here: the fusion module imports the layers it fuses
        from .fusion import batch_norm_scale_shift
        coefficients = self.coefficients.weight[:, :, 0, 0]
        bias = (
            self.coefficients.bias.clone() if self.coefficients.bias
            is not None else coefficients.new_zeros(self.out_channels))
        if self.norm is not None:
            scale, shift = batch_norm_scale_shift(self.norm)
            bias += coefficients @ shift
            coefficients = coefficients * scale
        conv = nn.Conv2d(
            **self.geometry._asdict(), bias=True).to(coefficients.device)
        conv.weight.copy_(
            torch.einsum('tr,rskl->tskl', coefficients, self.basis.weight))
        conv.bias.copy_(bias)
        return conv


def register_bases(owner: nn.Module, bases: Dict[str, nn.Parameter]) -> None:
    """Register each basis of ``bases`` in ``owner``, once, under its name.

    The one way a basis gets its owner: a group of layers (a residual group,
    a dense block) makes the bases its layers share
    (:func:`make_filter_basis`), registers them here and hands them to the
    layers, which use them without registering them.
    """
    for name, basis in bases.items():
        owner.register_parameter(name, basis)


class SharedBasisSequential(nn.Sequential):
    """Blocks in sequence that own the filter bases they share.

    A group of blocks (a residual group, a stage) makes each basis its
    blocks share (:func:`make_filter_basis`), hands it to the blocks and
    gives it here, ``bases``: this module registers each once
    (:func:`register_bases`), as a Parameter of its own (e.g.
    ``layer1.shared_basis``); the blocks use it
    without registering it. Being an ``nn.Sequential`` of the blocks only,
    it iterates, indexes and runs as one.

    Loading a state dict holding plain convolution weights where this
    group's layers share a basis (a plain ResNet checkpoint) fails with an
    error message saying how to get a compatible checkpoint.

    Args:
        *blocks (nn.Module): The blocks, in order.
        bases (dict[str, nn.Parameter], optional): The bases the blocks
            use, by the names this module registers them under.
            Defaults to None.
    """

    def __init__(self,
                 *blocks: nn.Module,
                 bases: Optional[Dict[str, nn.Parameter]] = None) -> None:
        super().__init__(*blocks)
        register_bases(self, bases or {})

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
