"""A shared-basis model's weights from a plain pretrained one.

:func:`convert_plain_state_dict` fills the state dict of a model whose
residual groups share filter bases (a ``SharedBasisResNet``, its CIFAR
variant or ``SharedBasisMobileNetV2``, alone or inside a classifier or a
detector) from the state dict of the plain model of the same structure
(the same keys, each shared layer holding a plain ``.weight``):

- the layers sharing one basis of a group are decomposed together
  (:mod:`.basis_decomposition`): a :class:`SharedBasisConv2d` (basis ->
  norm -> 1 x 1 coefficients) gets the basis, its unique elements and its
  coefficients, and its inner BatchNorm the identity (zero mean, unit
  variance, unit scale, zero shift), so the converted model computes
  ``A [B; U]`` in eval mode; a whole-weight :class:`BasisConv2d` (the
  Bottleneck ``share`` variants, MobileNetV2-Shared) gets the shared weight
  and the BatchNorm after it absorbs each block's per-filter scale;
- every other key (the first block of each group, the stem, the
  downsamples, every norm not named above, a head) is copied.

:func:`calibrate_norms` then sets the running statistics of the norms the
conversion set to those of real inputs without changing the eval-mode
function (so that fine-tuning in train mode starts from it).
"""
import math
import re
from collections import OrderedDict
from typing import (Callable, Dict, List, Mapping, Optional, Sequence,
                    Tuple)

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from ..layers import (BasisConv2d, SharedBasisConv2d, batch_norm_scale_shift,
                      find_basis_users)
from .basis_decomposition import (decompose_shared_basis,
                                  decompose_shared_weight)

# scales below this fraction of a filter's largest scale over the blocks
# leave the absorbing BatchNorm without estimated statistics
_TINY_SCALE = 1e-6


class PlainCheckpointError(ValueError):
    """A state dict that is not the plain model of the target's
    structure; the message names the first key that does not fit."""


def _following_norm(model: nn.Module, conv_name: str) -> str:
    """The name of the BatchNorm right after the convolution
    ``conv_name``: a ConvModule's norm, or ``norm<i>`` of an mmdet residual
    block after its ``conv<i>``."""
    parent_name, _, attr = conv_name.rpartition('.')
    parent = model.get_submodule(parent_name)
    if isinstance(parent, ConvModule) and attr == 'conv' and getattr(
            parent, 'with_norm', False) and tuple(
                parent.order[:2]) == ('conv', 'norm'):
        return f'{parent_name}.{parent.norm_name}'
    index = re.fullmatch(r'conv(\d)', attr)
    if index and hasattr(parent, f'norm{index[1]}_name'):
        return f'{parent_name}.{getattr(parent, f"norm{index[1]}_name")}'
    raise ValueError(f'{conv_name}: a shared whole convolution weight must be '
                     f'followed by a BatchNorm (a ConvModule\'s, or norm<i> '
                     f'after conv<i> of a residual block) to absorb each '
                     f'block\'s filter scales; none found')


def _check_norm(model: nn.Module, name: str, affine: bool) -> _BatchNorm:
    """The norm ``name``; raise unless it is a BatchNorm with running
    statistics (and affine parameters with ``affine``)."""
    norm = model.get_submodule(name)
    if not isinstance(norm, _BatchNorm) or norm.running_var is None or (
            affine and norm.weight is None):
        raise ValueError(
            f'{name}: a {type(norm).__name__} cannot be set to compute the '
            f'plain model in eval mode; expected a BatchNorm with running '
            f'statistics{" and affine parameters" if affine else ""} (a '
            f'GroupNorm normalizes each sample: no fixed setting makes it '
            f'the identity)')
    return norm


class _Plan:
    """Which keys of the target come from which plain keys.

    Attributes:
        factorized (dict): basis key -> names of its SharedBasisConv2d
            layers.
        whole (dict): basis key -> (names of its BasisConv2d layers,
            names of the BatchNorms after them).
        plain_shapes (OrderedDict): the plain model's keys and shapes.
    """

    def __init__(self, model: nn.Module) -> None:
        users = find_basis_users(model)
        if not users:
            raise ValueError(
                f'{type(model).__name__} shares no filter basis: there is '
                f'nothing to decompose; expected a model built with sharing '
                f'(e.g. SharedBasisResNet with basis_cfg)')
        self.factorized: Dict[str, List[str]] = {}
        self.whole: Dict[str, Tuple[List[str], List[str]]] = {}
        layer_shapes = {}
        for basis, names in users.items():
            for name in names:
                conv = model.get_submodule(name)
                if conv.groups != 1 or conv.unique_groups != 1:
                    raise ValueError(
                        f'{name}: a grouped basis (groups={conv.groups}) is '
                        f'not decomposed; only ungrouped bases are')
            parents = [name.rpartition('.')[0] for name in names]
            if all(
                    name.endswith('.basis') and isinstance(
                        model.get_submodule(parent), SharedBasisConv2d)
                    for name, parent in zip(names, parents)):
                self.factorized[basis] = parents
                for parent in parents:
                    layer = model.get_submodule(parent)
                    layer_shapes[parent] = (layer.out_channels,
                                            layer.in_channels,
                                            *layer.kernel_size)
                    if layer.norm is not None:
                        _check_norm(model, f'{parent}.norm', affine=False)
            else:
                norms = [_following_norm(model, name) for name in names]
                for norm in norms:
                    _check_norm(model, norm, affine=True)
                self.whole[basis] = (names, norms)
                for name in names:
                    layer_shapes[name] = tuple(
                        model.get_submodule(name).weight.shape)
        self.bases = set(users)
        self.plain_shapes: Dict[str, tuple] = OrderedDict()
        inside = ''
        for name, module in model.named_modules():
            prefix = f'{name}.' if name else ''
            if inside and prefix.startswith(inside):
                continue
            if name in layer_shapes:
                self.plain_shapes[f'{name}.weight'] = layer_shapes[name]
                inside = prefix
                continue
            own = [(key, value) for key, value in module._parameters.items()
                   if value is not None]
            own += [(key, value) for key, value in module._buffers.items()
                    if value is not None
                    and key not in module._non_persistent_buffers_set]
            for key, value in own:
                if prefix + key not in self.bases:
                    self.plain_shapes[prefix + key] = tuple(value.shape)

    def check(self, plain: Mapping[str, Tensor], what: str) -> None:
        """Raise a :class:`PlainCheckpointError` naming the first key of
        ``plain`` (or the first key it lacks) that does not fit."""
        for key, value in plain.items():
            if key not in self.plain_shapes:
                raise PlainCheckpointError(
                    f'{what}: its key {key!r} is not in the plain model')
            shape = tuple(getattr(value, 'shape', ()))
            if shape != self.plain_shapes[key]:
                raise PlainCheckpointError(
                    f'{what}: its key {key!r} has shape {shape}; the plain '
                    f'model has {self.plain_shapes[key]}')
        for key in self.plain_shapes:
            if key not in plain and not key.endswith('num_batches_tracked'):
                raise PlainCheckpointError(
                    f'{what}: it lacks the key {key!r} of the plain model')


def _relative(error: float, weight: Tensor) -> float:
    """``sqrt(error) / ||weight||_F`` for a squared error."""
    return math.sqrt(error) / max(weight.double().norm().item(), 1e-300)


def _conv_record(name: str, basis: str, weight: Tensor, error: float,
                 **extra) -> Dict:
    """The report of one converted convolution."""
    relative = _relative(error, weight)
    return dict(
        name=name,
        basis=basis,
        relative_error=relative,
        energy=1 - relative**2,
        **extra)


def _group_record(basis: str, layers: List[str], weights: List[Tensor],
                  errors: List[float], start_relative_error: Optional[float],
                  iterations: int) -> Dict:
    """The report of the layers sharing one basis."""
    return dict(
        basis=basis,
        layers=layers,
        relative_error=_relative(sum(errors), torch.cat(weights)),
        start_relative_error=start_relative_error,
        iterations=iterations)


def convert_plain_state_dict(
        model: nn.Module,
        plain: Mapping[str, Tensor],
        what: str = 'the plain state dict',
        max_iter: int = 1000) -> Tuple[Dict[str, Tensor], Dict]:
    """The state dict of ``model`` (sharing filter bases) converted from
    ``plain``, the state dict of the plain model of its structure.

    Args:
        model (nn.Module): The shared-basis model (its current state dict
            gives the keys, shapes, dtypes and ``num_batches_tracked``
            where ``plain`` has none).
        plain (Mapping[str, Tensor]): The plain model's state dict: the
            keys of ``model``'s, with ``<layer>.weight`` for each shared
            layer.
        what (str): How the error messages name ``plain``.
        max_iter (int): Refinement steps of each shared basis at most
            (:func:`decompose_shared_basis`). Defaults to 1000.

    Returns:
        tuple[dict, dict]: The state dict, which loads into ``model`` with
        ``strict=True``, and the report: ``convs``, per converted
        convolution its name, basis, ranks, ``relative_error``
        ``||W - W'||_F / ||W||_F``, ``energy`` (the fraction of
        ``||W||_F^2`` kept) and ``rank_energy`` (the most any rank
        ``n + u`` factorization of the convolution alone keeps, for the
        factorized ones); ``groups``, per basis the total relative error
        and that of the joint-SVD start; ``norms``, the names of the norms
        the conversion set (for :func:`calibrate_norms`).

    Raises:
        PlainCheckpointError: ``plain`` does not fit (the message names the
            first key that does not).
        ValueError: ``model`` shares nothing, or has a layer the
            conversion cannot set (grouped bases, a GroupNorm after a basis).
    """
    plan = _Plan(model)
    plan.check(plain, what)
    target = model.state_dict()
    out = OrderedDict()
    for key, value in target.items():
        if key in plain:
            out[key] = plain[key].detach().to(value.dtype).clone()
    report: Dict = dict(convs=[], groups=[], norms=[])

    def put(key: str, value: Tensor) -> None:
        out[key] = value.reshape(target[key].shape).to(target[key].dtype)

    for basis, layers in plan.factorized.items():
        modules = [model.get_submodule(name) for name in layers]
        weights = [
            plain[f'{name}.weight'].reshape(m.out_channels, -1)
            for name, m in zip(layers, modules)
        ]
        shared_rank = target[basis].shape[0]
        fit = decompose_shared_basis(weights, shared_rank,
                                     [m.basis.unique_rank for m in modules],
                                     max_iter)
        put(basis, fit.basis)
        for name, module, weight, unique, coefficients, error in zip(
                layers, modules, weights, fit.unique, fit.coefficients,
                fit.errors):
            if module.basis.unique_rank:
                put(f'{name}.basis.unique_weight', unique)
            put(f'{name}.coefficients.weight', coefficients)
            if module.coefficients.bias is not None:
                put(f'{name}.coefficients.bias',
                    torch.zeros(module.out_channels))
            if module.norm is not None:
                _set_norm(out, target, f'{name}.norm', module.norm,
                          torch.ones(module.rank), torch.zeros(module.rank),
                          torch.zeros(module.rank),
                          torch.full((module.rank, ), 1 - module.norm.eps))
                report['norms'].append(f'{name}.norm')
            values = torch.linalg.svdvals(weight.double()).square()
            rank = shared_rank + module.basis.unique_rank
            report['convs'].append(
                _conv_record(
                    name,
                    basis,
                    weight,
                    error,
                    shared_rank=shared_rank,
                    unique_rank=module.basis.unique_rank,
                    rank_energy=(values[:rank].sum() / values.sum()).item()))
        report['groups'].append(
            _group_record(basis, layers, weights, fit.errors,
                          _relative(fit.start_error, torch.cat(weights)),
                          fit.iterations))
    for basis, (convs, norms) in plan.whole.items():
        weights = [plain[f'{name}.weight'] for name in convs]
        fit = decompose_shared_weight(weights)
        put(basis, fit.weight)
        for conv, norm_name, weight, scales, error in zip(
                convs, norms, weights, fit.scales, fit.errors):
            _absorb_scales(out, target, norm_name,
                           model.get_submodule(norm_name), plain, scales)
            report['norms'].append(norm_name)
            report['convs'].append(
                _conv_record(conv, basis, weight, error, rank_energy=None))
        report['groups'].append(
            _group_record(basis, convs, weights, fit.errors, None, 0))
    for key, value in target.items():
        out.setdefault(key, value.clone())  # num_batches_tracked
    return OrderedDict((key, out[key]) for key in target), report


def _set_norm(out: Dict[str, Tensor], target: Dict[str, Tensor], name: str,
              norm: _BatchNorm, weight: Tensor, bias: Tensor, mean: Tensor,
              var: Tensor) -> None:
    """Write a BatchNorm's parameters and running statistics into
    ``out`` (those it has)."""
    for key, value in (('weight', weight), ('bias', bias),
                       ('running_mean', mean), ('running_var', var)):
        if f'{name}.{key}' in target:
            out[f'{name}.{key}'] = value.to(target[f'{name}.{key}'])


def _absorb_scales(out: Dict[str, Tensor], target: Dict[str, Tensor],
                   name: str, norm: _BatchNorm, plain: Mapping[str, Tensor],
                   scales: Tensor) -> None:
    """Set the BatchNorm after a shared whole weight B so that, on the
    responses ``B * x``, it computes in eval mode what the plain BatchNorm
    computed on ``W * x = diag(scales) B * x``.

    The eval-mode map is ``x -> a x + b`` with ``a = gamma d / s`` and
    ``b = beta - gamma mu / s`` (``s = sqrt(var + eps)``); the running
    statistics become the plain ones divided by the scales (where the scale
    is not tiny), and the affine parameters are set to keep that map.
    """
    gamma, beta, mu, var = (plain[f'{name}.{key}'].double()
                            for key in ('weight', 'bias', 'running_mean',
                                        'running_var'))
    s = torch.sqrt(var + norm.eps)
    scale = gamma * scales / s
    shift = beta - gamma * mu / s
    usable = scales.abs() > _TINY_SCALE * scales.abs().max().clamp_min(1e-300)
    safe = torch.where(usable, scales, torch.ones_like(scales))
    new_mean = torch.where(usable, mu / safe, torch.zeros_like(mu))
    new_var = torch.where(usable, var / safe.square(), var)
    _set_norm(out, target, name, norm,
              scale * torch.sqrt(new_var + norm.eps),
              shift + scale * new_mean, new_mean, new_var)


@torch.no_grad()
def calibrate_norms(model: nn.Module, norm_names: Sequence[str],
                    run: Callable[[], None]) -> None:
    """Set the running statistics of the BatchNorms ``norm_names`` of
    ``model`` to those of the inputs they see while ``run()`` runs
    ``model`` (in eval mode), keeping each norm's eval-mode function.

    Each norm's eval map ``x -> a x + b`` is kept by setting its scale to
    ``a * sqrt(var + eps)`` and its shift to ``b + a * mean``; in train
    mode, with batch statistics close to these, it then computes about the
    same, so fine-tuning starts from the converted function. Norms without
    affine parameters keep their statistics.

    Args:
        model (nn.Module): The converted model.
        norm_names (Sequence[str]): The norms to calibrate (the ``norms``
            of :func:`convert_plain_state_dict`'s report).
        run (Callable[[], None]): Runs ``model`` on the calibration data.
    """
    norms = {
        name: model.get_submodule(name)
        for name in norm_names
        if getattr(model.get_submodule(name), 'weight', None) is not None
    }
    sums: Dict[str, List] = {name: [0, 0., 0.] for name in norms}

    def hook(name: str) -> Callable:

        def record(module: nn.Module, args: tuple) -> None:
            x = args[0].double().transpose(0, 1).reshape(args[0].shape[1], -1)
            total = sums[name]
            total[0] += x.shape[1]
            total[1] = total[1] + x.sum(1)
            total[2] = total[2] + x.square().sum(1)

        return record

    handles = [
        norm.register_forward_pre_hook(hook(name))
        for name, norm in norms.items()
    ]
    training = model.training
    model.eval()
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
        model.train(training)
    for name, norm in norms.items():
        count, total, squares = sums[name]
        if not count:
            continue
        scale, shift = (t.double() for t in batch_norm_scale_shift(norm))
        mean = total / count
        var = (squares / count - mean.square()).clamp_min(0)
        norm.running_mean.copy_(mean)
        norm.running_var.copy_(var)
        norm.weight.copy_(scale * torch.sqrt(var + norm.eps))
        if norm.bias is not None:
            norm.bias.copy_(shift + scale * mean)
