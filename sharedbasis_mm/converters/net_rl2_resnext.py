"""The authors' CIFAR-100 ResNeXts in
:class:`~sharedbasis_mm.backbones.SharedBasisResNeXt_CIFAR`.

Their keys: the stem ``conv1``/``bn1``; in each group ``layer{i}``, plain
blocks as ``residual_function`` (0: conv1, 1: BN, 3: grouped 3 x 3 conv,
4: BN, 6: conv3, 7: BN) with ``shortcut.0``/``shortcut.1``, and (in
``ResNext_SingleShared``, after the first block) sharing blocks with
``conv1``, ``bn1``, their unique elements ``basis_conv2``, ``bn2`` over
unique and shared responses, ``conv3``, ``bn3`` and a copy of the group's
basis as ``shared_basis``; the group's basis again at the top as
``shared_basis_{i}``; the classifier ``linear``.
"""
from typing import Iterator

from ..backbones import SharedBasisResNeXt_CIFAR
from ..layers import BasisConv2d
from .net_rl2 import (Entry, module_entries, register_net_rl2_mapping,
                      shared_first, shared_first_inputs)

# our modules of a plain block and their index in `residual_function`
PLAIN = (('conv1', 0), ('norm1', 1), ('conv2', 3), ('norm2', 4),
         ('conv3', 6), ('norm3', 7))


def _sharing_block_entries(block, prefix: str) -> Iterator[Entry]:
    basis = block.conv2
    unique_rank = basis.unique_rank
    yield from module_entries(block.conv1, f'{prefix}.conv1')
    yield from module_entries(block.norm1, f'{prefix}.bn1')
    if basis.unique_weight is not None:
        yield Entry(basis.unique_weight, (f'{prefix}.basis_conv2.weight', ))
    for name, tensor in block.norm2.state_dict(keep_vars=True).items():
        fold = shared_first(unique_rank) if tensor.dim() == 1 else None
        yield Entry(tensor, (f'{prefix}.bn2.{name}', ), fold)
    yield Entry(block.conv3.weight, (f'{prefix}.conv3.weight', ),
                shared_first_inputs(unique_rank))
    yield from module_entries(block.norm3, f'{prefix}.bn3')


@register_net_rl2_mapping('SharedBasisResNeXt_CIFAR', head='linear')
def resnext_entries(backbone: SharedBasisResNeXt_CIFAR) -> Iterator[Entry]:
    """Their CIFAR-100 ``ResNext`` and ``ResNext_SingleShared``."""
    yield from module_entries(backbone.conv1, 'conv1')
    yield from module_entries(backbone.norm1, 'bn1')
    for index, name in enumerate(backbone.res_layers, 1):
        layer = getattr(backbone, name)
        sharing = [
            j for j, block in enumerate(layer)
            if isinstance(block.conv2, BasisConv2d)
        ]
        if sharing:
            copies = (f'shared_basis_{index}.weight', ) + tuple(
                f'{name}.{j}.shared_basis.weight' for j in sharing)
            yield Entry(layer[sharing[0]].conv2.shared_basis, (copies, ))
        for j, block in enumerate(layer):
            prefix = f'{name}.{j}'
            if j in sharing:
                yield from _sharing_block_entries(block, prefix)
            else:
                for module, k in PLAIN:
                    yield from module_entries(
                        getattr(block, module),
                        f'{prefix}.residual_function.{k}')
            if block.downsample is not None:
                yield from module_entries(block.downsample,
                                          f'{prefix}.shortcut')
