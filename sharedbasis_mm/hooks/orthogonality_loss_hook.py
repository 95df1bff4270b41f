"""Orthogonality regularization of shared filter bases (Learning Deeply
Shared Filter Bases, eq. 7)."""
from typing import Dict, Optional

import torch
import torch.nn as nn
from mmengine.hooks.hook import DATA_BATCH
from mmengine.logging import print_log
from torch import Tensor

from ..layers import orthogonality_error
from ..layers.orthogonality import REDUCTIONS
from ..registry import HOOKS
from ..utils.validation import (check_choice, check_number,
                                check_positive_int)
from .shared_basis_hook import SharedBasisHook


@HOOKS.register_module()
class OrthogonalityLossHook(SharedBasisHook):
    """Train with the orthogonality regularization of the shared bases.

    Adds ``loss_orth = loss_weight * sum_g err(W_g)`` to the losses of each
    training iteration, where ``W_g`` runs over every shared filter basis
    of the model and ``err`` is :func:`orthogonality_error`, so that the
    model trains on ``L_R = L + lambda * sum_g ||W_g^T W_g - I||^2`` (eq. 7
    of Learning Deeply Shared Filter Bases). Works with any mmengine model
    (mmdet detectors, mmpretrain classifiers, ...) without a change to it.

    On ``before_train`` (after ``load_checkpoint``/``resume``) the hook finds
    the bases and registers a forward hook on the model (on the module under
    a DDP wrapper, whose forward the wrapper's runs), removed on
    ``after_train``. The ``train_step`` of mmengine's ``BaseModel`` and of
    its DDP wrappers runs the forward pass with ``mode='loss'``, then
    ``parse_losses``, then ``optim_wrapper.update_params``: the forward hook
    adds ``loss_orth`` to the losses of each forward pass with
    ``mode='loss'`` of the model in training mode, so that ``parse_losses``
    sums it into the back-propagated loss (scaled by mixed-precision loss
    scaling, divided by the accumulation count, reduced across ranks with
    the other gradients) and logs it beside the other losses. The error is
    computed in float32, outside the autocast region of the forward pass,
    as ``parse_losses`` runs.

    ``loss_orth`` is small once the bases are near orthogonal (1e-6 and
    less), which mmengine's text log, at 4 decimals, shows as 0.0000: the
    base-10 logarithm of the unweighted error summed over the bases is
    logged beside it as ``log10_orth_error`` (-6.5 for 3.2e-7). The error of
    each basis is also logged (unweighted) every ``log_interval``
    iterations, to the text log and to the visualizer as
    ``orth_error/<basis name>``.

    Args:
        loss_weight (float): lambda of eq. 7, a finite number >= 0.
            Defaults to 10, the value of the shared filter bases paper's
            ablations; it goes with ``reduction``.
        reduction (str): The error of a basis is the ``'sum'`` of the
            squared entries of ``W^T W - I`` (eq. 7) or their ``'mean'``
            (the authors' code). Defaults to ``'mean'``.
        log_interval (int): Log the error of each basis every
            ``log_interval`` training iterations. Defaults to 50.
    """

    priority = 'NORMAL'
    inactive = 'no loss_orth is added'

    def __init__(self,
                 loss_weight: float = 10.,
                 reduction: str = 'mean',
                 log_interval: int = 50) -> None:
        super().__init__()
        self.loss_weight = check_number(
            'loss_weight', loss_weight, min_value=0, owner=type(self).__name__)
        self.reduction = check_choice(
            'reduction', reduction, REDUCTIONS, owner=type(self).__name__)
        self.log_interval = check_positive_int(
            'log_interval', log_interval, owner=type(self).__name__)
        self._errors: Optional[Tensor] = None

    def start(self, runner, model: nn.Module) -> None:
        """Add ``loss_orth`` to the losses of every training forward pass."""
        self._errors = None
        self._handles.append(
            model.register_forward_hook(self._add_loss_orth, with_kwargs=True))

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
        """Remove the forward hook."""
        super().after_train(runner)
        self._errors = None

    def _add_loss_orth(self, model: nn.Module, args: tuple, kwargs: dict,
                       losses: Dict[str, Tensor]
                       ) -> Optional[Dict[str, Tensor]]:
        """The losses of a training forward pass with ``loss_orth`` (and
        ``log10_orth_error``); other forward passes are left alone."""
        if kwargs.get('mode') != 'loss' or not model.training:
            return None
        if 'loss_orth' in losses:
            raise ValueError(
                f'OrthogonalityLossHook: the losses of the model already hold '
                f'a loss_orth, got losses with keys {list(losses)}')
        device = next(iter(self._bases.values())).device
        with torch.autocast(device.type, enabled=False):
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
        # parse_losses sums the values whose key holds 'loss' and logs all:
        # log10_orth_error is logged only. mmengine's text log shows 4
        # decimals, too few for an error of 1e-7: its base-10 logarithm
        # shows its size.
        return dict(
            losses,
            loss_orth=self.loss_weight * errors.sum(),
            log10_orth_error=self._errors.sum().log10())
