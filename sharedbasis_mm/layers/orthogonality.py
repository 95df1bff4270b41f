"""Orthogonality of filter bases (Learning Deeply Shared Filter Bases, eq. 7) and finding them."""
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from .shared_basis import BasisConv2d

REDUCTIONS = ('sum', 'mean')


def orthogonality_error(weight: Tensor, reduction: str = 'sum') -> Tensor:
    """``||W^T W - I||_F^2`` of a filter basis (eq. 7).

    ``W`` is the basis reshaped to ``(k * k * S, R)``, one element per
    column. When a basis has more elements than dimensions
    (``R > k * k * S``, as a shared 1 x 1 expansion), its columns cannot be
    orthonormal and the error is taken on its rows, ``||W W^T - I||^2``; in
    every other case this is exactly eq. 7. The Gram matrix is computed in
    float32 whatever the weight's dtype.

    Args:
        weight (Tensor): The basis, ``(R, S, k, k)`` or ``(R, D)``.
        reduction (str): ``'sum'`` over the Gram entries (eq. 7) or their
            ``'mean'`` (the authors' code). Defaults to ``'sum'``.

    Returns:
        Tensor: A scalar.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f'reduction must be one of {REDUCTIONS}, got '
                         f'reduction={reduction!r}')
    w = weight.reshape(weight.shape[0], -1).float()
    if w.shape[0] > w.shape[1]:
        w = w.t()
    gram = w @ w.t()
    squared = (gram - torch.eye(gram.shape[0], device=gram.device)).square()
    return squared.sum() if reduction == 'sum' else squared.mean()


def find_shared_bases(model: nn.Module) -> Dict[str, nn.Parameter]:
    """Every shared filter basis of a model, each once, by its name.

    A shared basis is the ``shared_basis`` Parameter of a
    :class:`BasisConv2d`. Its name is its key in ``model.state_dict()``
    (e.g. ``backbone.layer1.shared_basis``), and the bases come in
    state-dict order. A basis that ``model`` uses but does not hold (a
    submodule taken out of the group that owns its basis) is named after
    its first user, ``<layer>.shared_basis``, and comes last. Works on any
    ``nn.Module``, wrapped (DDP) or not.
    """
    first_users: Dict[int, Tuple[str, nn.Parameter]] = {}
    for name, module in model.named_modules():
        if isinstance(module, BasisConv2d) and module.shared_basis is not None:
            first_users.setdefault(
                id(module.shared_basis), (name, module.shared_basis))
    bases = {
        name: param
        for name, param in model.named_parameters()
        if id(param) in first_users
    }
    held = {id(param) for param in bases.values()}
    for key, (user, basis) in first_users.items():
        if key not in held:
            bases[f'{user}.shared_basis' if user else 'shared_basis'] = basis
    return bases


def find_basis_users(model: nn.Module) -> Dict[str, List[str]]:
    """For each shared basis, the names of the basis convolutions using it.

    Returns:
        dict[str, list[str]]: basis name (as in :func:`find_shared_bases`)
        to the names of the :class:`BasisConv2d` layers that share it, in
        module order.
    """
    names = {
        id(basis): name
        for name, basis in find_shared_bases(model).items()
    }
    users: Dict[str, List[str]] = {name: [] for name in names.values()}
    for name, module in model.named_modules():
        if isinstance(module, BasisConv2d) and module.shared_basis is not None:
            users[names[id(module.shared_basis)]].append(name)
    return users
