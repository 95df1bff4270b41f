"""Orthogonality regularization of shared filter bases (Learning Deeply Shared Filter Bases, eq. 7)."""
import logging
from typing import Callable, Dict, Optional

import torch
import torch.nn as nn
from mmengine.hooks.hook import DATA_BATCH, Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch import Tensor

from ..layers import find_shared_bases, orthogonality_error
from ..layers.orthogonality import REDUCTIONS
from ..registry import HOOKS


@HOOKS.register_module()
class OrthogonalityLossHook(Hook):
    """Train with the orthogonality regularization of the shared bases.

    Adds ``loss_orth = loss_weight * sum_g err(W_g)`` to the losses of each
    training iteration, where ``W_g`` runs over every shared filter basis
    of the model and ``err`` is :func:`orthogonality_error`, so that the
    model trains on ``L_R = L + lambda * sum_g ||W_g^T W_g - I||^2`` (eq. 7
    of Learning Deeply Shared Filter Bases). Works with any mmengine model (mmdet detectors,
    mmpretrain classifiers, ...) without a change to it.

    On ``before_train`` (after ``load_checkpoint``/``resume``) the hook finds
    the bases and wraps the ``parse_losses`` of the model (of the module
    under a DDP wrapper, which ``train_step`` calls) so that it adds
    ``loss_orth`` to the losses dict. ``train_step`` parses the losses
    before ``optim_wrapper.update_params``, so ``loss_orth`` is part of the
    back-propagated loss, scaled by mixed-precision loss scaling, divided by
    the accumulation count, reduced across ranks with the other gradients,
    and logged beside the other losses. ``after_train`` restores the model's
    ``parse_losses``.

    The error of each basis, computed once per iteration for the loss, is
    also logged (unweighted) every ``log_interval`` iterations, to the text
    log and to the visualizer as ``orth_error/<basis name>``.

    Args:
        loss_weight (float): lambda of eq. 7. Defaults to 10, the value of
            the shared filter bases paper's ablations; it goes with ``reduction``.
        reduction (str): The error of a basis is the ``'sum'`` of the
            squared entries of ``W^T W - I`` (eq. 7) or their ``'mean'``
            (the authors' code). Defaults to ``'mean'``.
        log_interval (int): Log the error of each basis every
            ``log_interval`` training iterations. Defaults to 50.
    """

    priority = 'NORMAL'

    def __init__(self,
                 loss_weight: float = 10.,
                 reduction: str = 'mean',
                 log_interval: int = 50) -> None:
        if not isinstance(loss_weight, (int, float)) or loss_weight < 0:
            raise ValueError(f'loss_weight must be a number >= 0, got '
                             f'loss_weight={loss_weight!r}')
        if reduction not in REDUCTIONS:
            raise ValueError(f'reduction must be one of {REDUCTIONS}, got '
                             f'reduction={reduction!r}')
        if not isinstance(log_interval, int) or log_interval < 1:
            raise ValueError(f'log_interval must be a positive integer, got '
                             f'log_interval={log_interval!r}')
        self.loss_weight = float(loss_weight)
        self.reduction = reduction
        self.log_interval = log_interval
        self._bases: Dict[str, nn.Parameter] = {}
        self._model: Optional[torch.nn.Module] = None
        self._parse_losses: Optional[Callable] = None
        self._own_parse_losses: Optional[Callable] = None
        self._errors: Optional[Tensor] = None

    def before_train(self, runner) -> None:
        """Find the shared bases and wrap the model's ``parse_losses``."""
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        self._bases = find_shared_bases(model)
        if not self._bases:
            print_log(
                f'OrthogonalityLossHook: {type(model).__name__} has no '
                f'shared filter basis; no loss_orth is added',
                logger='current',
                level=logging.WARNING)
            return
        self._model = model
        self._own_parse_losses = vars(model).get('parse_losses')
        self._parse_losses = model.parse_losses
        model.parse_losses = self._parse_losses_with_orthogonality

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        """Log the error of each basis every ``log_interval`` iterations."""
        if self._errors is None or not self.every_n_train_iters(
                runner, self.log_interval):
            return
        errors = dict(zip(self._bases, self._errors.tolist()))
        runner.visualizer.add_scalars(
            {f'orth_error/{name}': error
             for name, error in errors.items()},
            step=runner.iter + 1)
        print_log(
            f'Iter(train) [{runner.iter + 1}] orthogonality error: ' +
            ', '.join(f'{name}: {error:.4g}'
                      for name, error in errors.items()),
            logger='current')

    def after_train(self, runner) -> None:
        """Leave the model's ``parse_losses`` as it was found."""
        if self._model is None:
            return
        if self._own_parse_losses is None:
            del self._model.parse_losses
        else:
            self._model.parse_losses = self._own_parse_losses
        self._model = self._parse_losses = self._own_parse_losses = None
        self._errors = None

    def _parse_losses_with_orthogonality(self, losses: Dict[str, Tensor]):
        if 'loss_orth' in losses:
            raise ValueError(
                f'OrthogonalityLossHook: the losses of the model already hold '
                f'a loss_orth, got losses with keys {list(losses)}')
        errors = torch.stack([
            orthogonality_error(basis, self.reduction)
            for basis in self._bases.values()
        ])
        if not torch.isfinite(errors).all():
            names = [
                name for name, error in zip(self._bases, errors)
                if not torch.isfinite(error)
            ]
            raise FloatingPointError(
                f'OrthogonalityLossHook: the orthogonality error of the '
                f'shared basis {", ".join(names)} is not finite')
        self._errors = errors.detach()
        losses = dict(losses, loss_orth=self.loss_weight * errors.sum())
        return self._parse_losses(losses)
