"""The authors' CIFAR-100 DenseNets in
:class:`~sharedbasis_mm.backbones.SharedBasisDenseNet_CIFAR`.

Their keys: the stem ``conv1``; under ``features``, dense block ``i`` (named
``dense_block_layer_{i}``, the last one of the plain ``DenseNet`` named
``dense_block{i}``) with layers ``bottle_neck_layer_{j}``, the transitions
``transition_layer_{i}.down_sample.0`` (BN) and ``.1`` (conv), the final
``bn``; the classifier ``linear``. A plain layer is ``residual_function``
(0: BN, 2: 1 x 1 conv, 3: BN, 5: 3 x 3 conv); a sharing layer has ``bn0``,
``conv1``, ``bn1``, its unique elements ``basis_conv2``, the norm
``basis_bn2`` and the coefficients ``coeff_conv2``, and a copy of its dense
block's basis as ``shared_basis``. ``DenseNet_SingleShared`` also stores
the bases at the top, ``shared_basis_{1..4}``: dense block ``i`` uses
``shared_basis_{min(i, 2) + 1}``, so ``shared_basis_4`` is used by no layer
(our config builds the same sharing with ``basis_indices=(0, 1, 2, 2)``);
the conversion reads it and leaves it out.
"""
from typing import Dict, Iterator, List, Tuple

from torch import Tensor

from ..backbones import SharedBasisDenseNet_CIFAR
from ..layers import SharedBasisConv2d
from .net_rl2 import (Entry, NetRL2ConversionError, module_entries,
                      register_net_rl2_mapping, shared_first,
                      shared_first_inputs)

# their number of top-level bases, and the last one any dense block uses
NUM_TOP_BASES = 4
LAST_USED_TOP_BASIS = 3


def _leave_out_unused(basis: Tensor, unused: Tensor) -> Tensor:
    """The basis; ``unused`` is their ``shared_basis_4``, used by no layer."""
    return basis


def _block_name(backbone: SharedBasisDenseNet_CIFAR, index: int) -> str:
    last_plain = (index == backbone.num_stages - 1
                  and backbone.shared_rank == 0)
    return (f'features.dense_block{index}'
            if last_plain else f'features.dense_block_layer_{index}')


def _layer_entries(layer, prefix: str) -> Iterator[Entry]:
    if not isinstance(layer.conv2, SharedBasisConv2d):
        for name, index in (('norm1', 0), ('conv1', 2), ('norm2', 3),
                            ('conv2', 5)):
            yield from module_entries(
                getattr(layer, name), f'{prefix}.residual_function.{index}')
        return
    yield from module_entries(layer.norm1, f'{prefix}.bn0')
    yield from module_entries(layer.conv1, f'{prefix}.conv1')
    yield from module_entries(layer.norm2, f'{prefix}.bn1')
    conv = layer.conv2
    unique_rank = conv.basis.unique_rank
    if conv.basis.unique_weight is not None:
        yield Entry(conv.basis.unique_weight,
                    (f'{prefix}.basis_conv2.weight', ))
    for name, tensor in conv.norm.state_dict(keep_vars=True).items():
        fold = shared_first(unique_rank) if tensor.dim() == 1 else None
        yield Entry(tensor, (f'{prefix}.basis_bn2.{name}', ), fold)
    yield Entry(conv.coefficients.weight, (f'{prefix}.coeff_conv2.weight', ),
                shared_first_inputs(unique_rank))


def _basis_entries(backbone: SharedBasisDenseNet_CIFAR) -> Iterator[Entry]:
    """Each of our bases from every copy of it in their checkpoint."""
    users: Dict[int, Tuple[Tensor, List[str]]] = {}
    for index, stage in enumerate(backbone.stages):
        weight = stage.block[0].conv2.shared_basis
        _, keys = users.setdefault(id(weight), (weight, []))
        top = min(index + 1, LAST_USED_TOP_BASIS)
        keys += [f'shared_basis_{top}.weight'] + [
            f'{_block_name(backbone, index)}.bottle_neck_layer_{j}.'
            f'shared_basis.weight' for j in range(len(stage.block))
        ]
    entries = [
        Entry(weight, (tuple(dict.fromkeys(keys)), ))
        for weight, keys in users.values()
    ]
    last = entries[-1]
    unused = f'shared_basis_{NUM_TOP_BASES}.weight'
    entries[-1] = Entry(last.target, (*last.sources, unused),
                        _leave_out_unused)
    yield from entries


@register_net_rl2_mapping('SharedBasisDenseNet_CIFAR', head='linear')
def densenet_entries(backbone: SharedBasisDenseNet_CIFAR) -> Iterator[Entry]:
    """Their CIFAR-100 ``DenseNet`` and ``DenseNet_SingleShared``."""
    if backbone.transition_act:
        raise NetRL2ConversionError(
            'the transitions of the authors\' DenseNets have no activation, '
            'but the backbone has transition_act=True; expected '
            'transition_act=False')
    yield from module_entries(backbone.stem[0], 'conv1')
    if backbone.shared_rank > 0:
        yield from _basis_entries(backbone)
    for index, stage in enumerate(backbone.stages):
        block = _block_name(backbone, index)
        for j, layer in enumerate(stage.block):
            yield from _layer_entries(layer, f'{block}.bottle_neck_layer_{j}')
        transition = backbone.transitions[index]
        if index < backbone.num_stages - 1:
            prefix = f'features.transition_layer_{index}.down_sample'
            yield from module_entries(transition.norm, f'{prefix}.0')
            yield from module_entries(transition.conv, f'{prefix}.1')
        else:
            yield from module_entries(transition[0], 'features.bn')
