"""Orthogonality of filter bases (Learning Deeply Shared Filter Bases, eq. 7) and finding them."""
from typing import Dict, List

import torch
import torch.nn as nn
from torch import Tensor

from .shared_basis import BasisConv2d, FilterBasis

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


def find_shared_bases(model: nn.Module) -> Dict[str, FilterBasis]:
    """Every :class:`FilterBasis` of a model, each once, by module name.

    Works on any ``nn.Module``, wrapped (DDP) or not; a basis used by
    several layers is listed once, under the first name it is reached by.
    """
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, FilterBasis)
    }


def find_basis_users(model: nn.Module) -> Dict[str, List[str]]:
    """For each shared basis, the names of the basis convolutions using it.

    Returns:
        dict[str, list[str]]: basis name (as in :func:`find_shared_bases`)
        to the names of the :class:`BasisConv2d` layers that share it, in
        module order.
    """
    names = {id(basis): name for name, basis in find_shared_bases(model).items()}
    users: Dict[str, List[str]] = {name: [] for name in names.values()}
    for name, module in model.named_modules():
        if isinstance(module, BasisConv2d) and module.shared_basis is not None:
            users[names[id(module.shared_basis)]].append(name)
    return users
