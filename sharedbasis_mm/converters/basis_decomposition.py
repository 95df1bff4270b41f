"""Filter-basis decomposition of trained convolution weights.

The math of turning the plain convolutions of a residual group into the
shared-basis layers of Learning Deeply Shared Filter Bases, in one place.
Each weight ``W_j`` is flattened to ``(C_out, C_in * k * k)``.

- :func:`decompose_shared_basis`: ``W_j ~ A_j [B; U_j]`` with one basis B
  of n orthonormal rows shared by all weights, ``u_j`` unique rows ``U_j``
  and coefficients ``A_j`` per weight, minimizing the total squared
  Frobenius error (the BasicBlock :class:`SharedBasisConv2d` layers).
- :func:`decompose_shared_weight`: ``W_j ~ diag(d_j) B``, one shared weight
  B whose filters (rows) are of unit norm and one scale per filter and
  weight, which the BatchNorm after each shared convolution absorbs (the
  whole-weight :class:`BasisConv2d` layers of the Bottleneck ``share``
  variants and of MobileNetV2-Shared).
"""
from typing import List, NamedTuple, Sequence

import torch
from torch import Tensor


class SharedBasisFit(NamedTuple):
    """A decomposition ``W_j ~ coefficients[j] @ cat(basis, unique[j])``.

    Attributes:
        basis (Tensor): ``(n, D)``, orthonormal rows.
        unique (list[Tensor]): ``(u_j, D)`` per weight, orthonormal rows
            orthogonal to the basis.
        coefficients (list[Tensor]): ``(C_out_j, n + u_j)`` per weight.
        errors (list[float]): ``||W_j - A_j [B; U_j]||_F^2`` per weight.
        start_error (float): The total squared error of the joint-SVD
            start (the basis of the stacked weights' top n right singular
            vectors), which the result never exceeds.
        iterations (int): Alternating least-squares steps taken.
    """
    basis: Tensor
    unique: List[Tensor]
    coefficients: List[Tensor]
    errors: List[float]
    start_error: float
    iterations: int


def _orthonormal_rows(rows: Tensor) -> Tensor:
    """An orthonormal basis of the span of ``rows`` (as many rows)."""
    return torch.linalg.qr(rows.t())[0].t()


def _fit_given_basis(weight: Tensor, basis: Tensor,
                     unique_rank: int) -> tuple:
    """The best unique rows and coefficients of ``weight`` for ``basis``:
    the basis plus the top ``unique_rank`` right singular vectors of the
    residual outside it. Returns ``(unique, coefficients, squared error)``.
    """
    residual = weight - (weight @ basis.t()) @ basis
    unique = weight.new_zeros(0, weight.shape[1])
    if unique_rank:
        unique = torch.linalg.svd(residual, full_matrices=False)[2]
        unique = unique[:unique_rank]
        unique = _orthonormal_rows(unique - (unique @ basis.t()) @ basis)
    rows = torch.cat([basis, unique])
    coefficients = weight @ torch.linalg.pinv(rows)
    error = (weight - coefficients @ rows).square().sum().item()
    return unique, coefficients, error


def _start_bases(weights: Sequence[Tensor], shared_rank: int,
                 unique_ranks: Sequence[int]) -> List[Tensor]:
    """Two starting bases: the joint SVD of the stacked weights, and the
    consensus of each weight's best rank-(n + u_j) row space (exact when
    every weight lies in the representable set)."""
    stacked = torch.linalg.svd(torch.cat(list(weights)),
                               full_matrices=False)[2][:shared_rank]
    spaces = [
        torch.linalg.svd(w, full_matrices=False)[2][:shared_rank + u]
        for w, u in zip(weights, unique_ranks)
    ]
    consensus = torch.linalg.svd(torch.cat(spaces),
                                 full_matrices=False)[2][:shared_rank]
    return [stacked, consensus]


def decompose_shared_basis(weights: Sequence[Tensor],
                           shared_rank: int,
                           unique_ranks: Sequence[int],
                           max_iter: int = 1000,
                           tol: float = 1e-13) -> SharedBasisFit:
    """Decompose weights into one shared basis, unique rows and
    coefficients, minimizing ``sum_j ||W_j - A_j [B; U_j]||_F^2``.

    Given B, the best ``U_j`` and ``A_j`` are closed-form (the top ``u_j``
    right singular vectors of ``W_j``'s residual outside B). B starts as the
    better of the joint SVD of the stacked weights and the consensus of the
    weights' row spaces, then alternating least squares refines it: B by
    least squares for the current ``A_j`` and ``U_j`` (orthonormalized, its
    factor moved into the coefficients), then ``U_j`` and ``A_j`` for the
    new B. No step increases the error, so the result is no worse than the
    joint-SVD start, and weights that are exactly representable are
    recovered exactly: at once where every weight has at least
    ``n + u_j`` filters (the consensus start is exact), by the refinement
    where it has fewer (e.g. 16 filters on a basis of 16 + 1 rows, whose
    shared part no single weight determines; it converges linearly).
    Computed in float64.

    Args:
        weights (Sequence[Tensor]): ``(C_out_j, D)`` each, same D.
        shared_rank (int): The shared rows n.
        unique_ranks (Sequence[int]): The unique rows ``u_j`` per weight.
        max_iter (int): Alternating least-squares steps at most.
            Defaults to 1000.
        tol (float): Stop when a step lowers the error by less than
            ``tol`` times the weights' energy. Defaults to 1e-13.
    """
    weights = [w.detach().double().reshape(w.shape[0], -1) for w in weights]
    dims = {w.shape[1] for w in weights}
    if len(dims) != 1 or len(weights) != len(unique_ranks):
        raise ValueError(
            f'decompose_shared_basis: expected weights of one row length '
            f'and one unique rank each, got row lengths {sorted(dims)} for '
            f'{len(weights)} weights and {len(unique_ranks)} unique ranks')
    dim = dims.pop()
    for w, u in zip(weights, unique_ranks):
        if shared_rank + u > dim or u > min(w.shape):
            raise ValueError(
                f'decompose_shared_basis: shared_rank={shared_rank} + '
                f'unique_rank={u} rows cannot be fitted to a '
                f'{tuple(w.shape)} weight; expected at most {dim} rows and '
                f'a unique rank at most {min(w.shape)}')
    energy = sum(w.square().sum().item() for w in weights)

    def fit(basis: Tensor) -> tuple:
        parts = [
            _fit_given_basis(w, basis, u)
            for w, u in zip(weights, unique_ranks)
        ]
        return basis, parts, sum(p[2] for p in parts)

    starts = [fit(b) for b in _start_bases(weights, shared_rank,
                                           unique_ranks)]
    start_error = starts[0][2]
    best = min(starts, key=lambda s: s[2])
    iterations = 0
    while iterations < max_iter:
        basis, parts, error = best
        mixing = [a[:, :shared_rank] for _, a, _ in parts]
        targets = [
            w - a[:, shared_rank:] @ unique
            for w, (unique, a, _) in zip(weights, parts)
        ]
        gram = sum(m.t() @ m for m in mixing)
        rhs = sum(m.t() @ t for m, t in zip(mixing, targets))
        new_basis = torch.linalg.lstsq(gram, rhs).solution
        if torch.linalg.matrix_rank(new_basis) < shared_rank:
            break
        candidate = fit(_orthonormal_rows(new_basis))
        iterations += 1
        if candidate[2] >= error:
            break
        best = candidate
        if error - candidate[2] <= tol * energy:
            break
    basis, parts, _ = best
    return SharedBasisFit(basis, [p[0] for p in parts],
                          [p[1] for p in parts], [p[2] for p in parts],
                          start_error, iterations)


class SharedWeightFit(NamedTuple):
    """A decomposition ``W_j ~ scales[j][:, None] * weight``.

    Attributes:
        weight (Tensor): ``(C_out, D)``, each row of unit norm.
        scales (Tensor): ``(L, C_out)``, the scale of each filter of each
            weight, to be absorbed by the norm after the convolution.
        errors (list[float]): ``||W_j - diag(d_j) B||_F^2`` per weight.
    """
    weight: Tensor
    scales: Tensor
    errors: List[float]


def decompose_shared_weight(weights: Sequence[Tensor]) -> SharedWeightFit:
    """Decompose same-shaped weights into one shared weight and per-filter
    scales, minimizing ``sum_j ||W_j - diag(d_j) B||_F^2``.

    Filter t of B is the top right singular vector of the filters t of all
    weights stacked, ``d_jt`` their coordinates along it (the best rank-1
    fit, filter by filter), signed so that the scales sum to >= 0. Weights
    that are exactly per-filter multiples of one weight are recovered
    exactly. Computed in float64.

    Args:
        weights (Sequence[Tensor]): ``(C_out, D)`` each (or
            ``(C_out, C_in, k, k)``), same shape.
    """
    shapes = {tuple(w.shape) for w in weights}
    if len(shapes) != 1:
        raise ValueError(f'decompose_shared_weight: expected weights of one '
                         f'shape, got {sorted(shapes)}')
    stacked = torch.stack([
        w.detach().double().reshape(w.shape[0], -1) for w in weights
    ], 1)  # (C_out, L, D)
    left, values, right = torch.linalg.svd(stacked, full_matrices=False)
    weight = right[:, 0]
    scales = (left[:, :, 0] * values[:, :1]).t()  # (L, C_out)
    sign = torch.where(scales.sum(0) < 0, -1., 1.).to(scales)
    weight, scales = weight * sign[:, None], scales * sign
    errors = [(w - s[:, None] * weight).square().sum().item()
              for w, s in zip(stacked.unbind(1), scales)]
    return SharedWeightFit(weight, scales, errors)
