"""Similarity of the coefficients of layers sharing a basis (Learning Deeply
Shared Filter Bases, Figure 4).

Each :class:`SharedBasisConv2d` combines the R elements of its basis with a
``T x R`` matrix of coefficients, one row (a coefficient vector) per output
filter. Figure 4 of Learning Deeply Shared Filter Bases shows the absolute
cosine similarity between all coefficient vectors of the blocks that share
one basis: high off-diagonal similarity means redundant filters, and the
orthogonality regularization lowers it.
"""
from collections import OrderedDict
from typing import TYPE_CHECKING, Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..layers import SharedBasisConv2d, find_basis_users

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def shared_basis_coefficients(
        model: nn.Module) -> Dict[str, Dict[str, Tensor]]:
    """The coefficients of the layers using each shared basis of a model.

    Args:
        model (nn.Module): Any model, wrapped or not.

    Returns:
        dict[str, dict[str, Tensor]]: For each shared basis (by the name
        :func:`find_basis_users` gives it) that at least one
        :class:`SharedBasisConv2d` uses, the ``(T, R)`` coefficient matrix
        of each such layer by layer name, in module order. Basis
        convolutions outside a :class:`SharedBasisConv2d` have no
        coefficients of their own and are left out.
    """
    groups: Dict[str, Dict[str, Tensor]] = OrderedDict()
    for basis_name, user_names in find_basis_users(model).items():
        coefficients = OrderedDict()
        for user_name in user_names:
            layer_name = user_name.rpartition('.')[0]
            layer = model.get_submodule(layer_name)
            if isinstance(layer, SharedBasisConv2d):
                weight = layer.coefficients.weight.detach()
                coefficients[layer_name] = weight.reshape(weight.shape[0], -1)
        if coefficients:
            groups[basis_name] = coefficients
    return groups


def coefficient_similarity(coefficients: Sequence[Tensor]) -> Tensor:
    """Absolute cosine similarity of all coefficient vectors of a group.

    Args:
        coefficients (Sequence[Tensor]): The ``(T_i, R)`` coefficient
            matrices of the layers sharing a basis, all with the same R.

    Returns:
        Tensor: ``(sum_i T_i, sum_i T_i)`` float32 matrix of
        ``|cos(a, b)|`` between the rows of the stacked matrices, in
        ``[0, 1]``, layer after layer. A zero vector has similarity 0 with
        every vector.
    """
    if len(coefficients) == 0:
        raise ValueError('coefficients must hold at least one matrix, got '
                         'an empty sequence')
    ranks = {c.shape[-1] for c in coefficients}
    if len(ranks) != 1 or any(c.dim() != 2 for c in coefficients):
        shapes = [tuple(c.shape) for c in coefficients]
        raise ValueError(f'coefficients must be (T, R) matrices with one '
                         f'rank R, got shapes {shapes}')
    vectors = F.normalize(torch.cat(coefficients).float(), dim=1)
    return (vectors @ vectors.t()).abs().clamp_(max=1)


def mean_off_diagonal(similarity: Tensor) -> float:
    """The mean of a square matrix over its off-diagonal entries."""
    if similarity.dim() != 2 or similarity.shape[0] != similarity.shape[1]:
        raise ValueError(f'similarity must be a square matrix, got shape '
                         f'{tuple(similarity.shape)}')
    size = similarity.shape[0]
    if size < 2:
        raise ValueError(f'similarity must be at least 2 x 2 to have '
                         f'off-diagonal entries, got {size} x {size}')
    off_diagonal = similarity.sum() - similarity.diagonal().sum()
    return off_diagonal.item() / (size * (size - 1))


def plot_coefficient_similarity(similarity: Tensor,
                                layer_sizes: Sequence[int],
                                title: Optional[str] = None) -> 'Figure':
    """A Figure-4-style heat-map of a coefficient similarity matrix.

    Args:
        similarity (Tensor): ``(N, N)`` matrix from
            :func:`coefficient_similarity`.
        layer_sizes (Sequence[int]): The number of coefficient vectors
            ``T_i`` of each layer, in order; white lines separate the layers.
        title (str, optional): Title of the panel. Defaults to None.

    Returns:
        Figure: One panel with the heat-map (brighter is more similar) and
        its colour bar.
    """
    if sum(layer_sizes) != similarity.shape[0]:
        raise ValueError(f'layer_sizes must add up to the size of the '
                         f'similarity matrix, {similarity.shape[0]}, got '
                         f'layer_sizes={list(layer_sizes)}')
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 5), layout='constrained')
    axes = figure.add_subplot()
    image = axes.imshow(
        similarity.cpu().numpy(), cmap='viridis', vmin=0, vmax=1,
        interpolation='nearest')
    for boundary in np.cumsum(layer_sizes)[:-1] - 0.5:
        axes.axhline(boundary, color='white', linewidth=0.5)
        axes.axvline(boundary, color='white', linewidth=0.5)
    axes.set_xlabel('coefficient index')
    axes.set_ylabel('coefficient index')
    if title:
        axes.set_title(title)
    figure.colorbar(image, ax=axes, label='|cosine similarity|')
    return figure
