"""References for the tests: gradients checked by float64 autograd and
finite differences, or, for a shared basis, by the same model with the basis
untied; BatchNorms as after training, for the fusion checks."""
import copy
from typing import Callable, Iterable, Sequence

import pytest
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from sharedbasis_mm.layers import find_basis_users, find_shared_bases

# the finite-difference step: float64's rounding (~1e-16 / EPS) and the
# curvature term (~EPS^2) stay far below the tolerance
EPS = 1e-6


def assert_gradients(model: nn.Module,
                     loss_of: Callable[..., torch.Tensor],
                     inputs: Sequence[torch.Tensor],
                     params: Iterable[nn.Parameter],
                     seed: int = 0) -> None:
    """Check the gradients a test's backward left in ``params`` of
    ``model`` and in the ``inputs`` that require one.

    A float64 copy of the model computes ``loss_of(copy, *inputs)`` and its
    gradients. Each tested gradient must be the copy's to 1e-3 in norm, and
    the copy's, along a random direction, a nonzero derivative equal to the
    central finite difference of the loss to 1e-4. A check for computations
    that float32 rounds well: a whole backbone at initialisation, its
    BatchNorms normalising a batch of two, is not one (its nearly constant
    channels move float32 gradients from float64 ones by percents).

    Args:
        model (nn.Module): The model after the test's backward.
        loss_of (callable): ``loss_of(model, *inputs)``: the scalar the
            test differentiated.
        inputs (Sequence[Tensor]): The inputs of ``loss_of``.
        params (Iterable[Parameter]): The parameters of ``model`` to check.
        seed (int): Seed of the random directions.
    """
    reference = copy.deepcopy(model).double()
    reference.zero_grad(set_to_none=True)
    ref_inputs = [
        x.detach().double().requires_grad_(x.requires_grad) for x in inputs
    ]
    loss_of(reference, *ref_inputs).backward()
    ids = {id(p) for p in params}
    references = dict(reference.named_parameters())
    pairs = {
        name: (p, references[name])
        for name, p in model.named_parameters() if id(p) in ids
    }
    assert len(pairs) == len(ids), 'a parameter not of the model'
    pairs.update({
        f'input {i}': pair
        for i, pair in enumerate(zip(inputs, ref_inputs))
        if pair[0].requires_grad
    })
    generator = torch.Generator().manual_seed(seed)
    for name, (tested, ref) in pairs.items():
        assert tested.grad is not None, name
        error = float((tested.grad.double() - ref.grad).norm())
        assert error <= 1e-3 * float(ref.grad.norm()), (name, error)
        direction = torch.randn(
            ref.shape, generator=generator, dtype=torch.float64)
        derivative = float((ref.grad * direction).sum())
        losses = []
        with torch.no_grad():
            for move in (EPS, -2 * EPS, EPS):
                ref.add_(move * direction)
                losses.append(float(loss_of(reference, *ref_inputs)))
        assert derivative != 0, name
        assert derivative == pytest.approx(
            (losses[0] - losses[1]) / (2 * EPS), rel=1e-4), name


def assert_shared_basis_gradients(model: nn.Module,
                                   loss_of: Callable[..., torch.Tensor],
                                   inputs: Sequence[torch.Tensor]) -> None:
    """Check that the gradient a test's backward left in each shared basis
    of ``model`` is the sum of those its users get from a copy of their
    own: the same computation with every user's basis untied.

    Unlike :func:`assert_gradients`, this holds however float32 rounds the
    model (both sides round the same operations alike).

    Args:
        model (nn.Module): The model after the test's backward.
        loss_of (callable): ``loss_of(model, *inputs)``: the scalar the
            test differentiated.
        inputs (Sequence[Tensor]): The inputs of ``loss_of``.
    """
    untied = copy.deepcopy(model)
    untied.zero_grad(set_to_none=True)
    copies = {}
    for name, users in find_basis_users(untied).items():
        assert users, name
        for user in users:
            module = untied.get_submodule(user)
            own = module.shared_basis.detach().clone().requires_grad_()
            # the attribute a user reads its basis from, a Parameter it
            # does not register
            object.__setattr__(module, 'shared_basis', own)
            copies.setdefault(name, []).append(own)
    loss_of(untied, *inputs).backward()
    bases = find_shared_bases(model)
    assert bases and bases.keys() == copies.keys()
    for name, basis in bases.items():
        grads = [own.grad for own in copies[name]]
        assert basis.grad is not None and all(g is not None for g in grads)
        largest = max(float(g.abs().max()) for g in grads)
        assert largest > 0, name
        torch.testing.assert_close(
            basis.grad, sum(grads), rtol=1e-4, atol=1e-5 * largest,
            msg=lambda m, name=name: f'{name}: {m}')


def randomize_batch_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random running statistics, weights and biases in every BatchNorm of
    ``model``, as after training: the defaults (mean 0, variance 1, weight
    1, bias 0) fold into a conv as almost nothing. Returns ``model``."""
    generator = torch.Generator().manual_seed(seed)

    def uniform(tensor: torch.Tensor, low: float, high: float) -> None:
        tensor.copy_(low + (high - low) * torch.rand(
            tensor.shape, generator=generator, dtype=tensor.dtype))

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, _BatchNorm):
                uniform(module.running_mean, -0.5, 0.5)
                uniform(module.running_var, 0.5, 2)
                if module.affine:
                    uniform(module.weight, 0.5, 1.5)
                    uniform(module.bias, -0.5, 0.5)
    return model
