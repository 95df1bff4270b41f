"""Gradients flowing into shared filter bases (Learning Deeply Shared Filter
Bases, Figure 3)."""
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.hooks.hook import DATA_BATCH
from mmengine.logging import print_log
from mmengine.optim import OptimWrapperDict

from ..analysis import plot_gradient_flow
from ..registry import HOOKS
from ..utils.validation import (check_bool, check_positive_int, check_type,
                                check_writable_dir)
from .shared_basis_hook import SharedBasisHook


@HOOKS.register_module()
class GradientFlowHook(SharedBasisHook):
    """Record, log and plot the gradients of the shared filter bases.

    Every ``interval`` training iterations, the maximum and the mean
    absolute gradient of each shared filter basis of the model are
    recorded as the optimizer is about to step (so after gradient
    accumulation, the cross-rank reduction, mixed-precision unscaling and
    gradient clipping: the gradient the optimizer applies), and logged
    through the runner's visualizer as ``grad_flow/<basis>/max`` and
    ``grad_flow/<basis>/mean`` (TensorBoard or any configured backend shows
    them). At the end of each epoch (once for an iteration-based loop) the
    recorded bars are drawn overlapped, as Figure 3 of Learning Deeply
    Shared Filter Bases, into ``<out_dir>/epoch_<n>.png``. An iteration
    without an optimizer step (accumulating, or skipped by the loss scaler)
    records nothing. The gradients are read by an optimizer step pre-hook,
    registered in ``before_train_iter`` of an iteration to record and
    removed in its ``after_train_iter``.

    Args:
        interval (int): Record every ``interval`` iterations. Defaults to
            10, as Figure 3.
        out_dir (str, optional): Where the plots go. Defaults to
            ``<runner.log_dir>/gradient_flow``.
        log_scale (bool): Logarithmic gradient axis in the plots.
            Defaults to False.
    """

    priority = 'NORMAL'
    inactive = 'no gradient is recorded'

    def __init__(self,
                 interval: int = 10,
                 out_dir: Optional[str] = None,
                 log_scale: bool = False) -> None:
        super().__init__()
        name = type(self).__name__
        self.interval = check_positive_int('interval', interval, owner=name)
        if out_dir is not None:
            check_type('out_dir', out_dir, (str, os.PathLike), owner=name)
        self.out_dir = out_dir
        self.log_scale = check_bool('log_scale', log_scale, owner=name)
        self._plot_dir = out_dir
        self._current: Dict[str, Tuple[float, float]] = {}
        self._records: List[Dict[str, Tuple[float, float]]] = []

    def before_run(self, runner) -> None:
        """Check that the plots can be written, before anything is run
        (not at the end of the first epoch, before its checkpoint)."""
        self._plot_dir = check_writable_dir(
            'out_dir',
            self.out_dir or osp.join(runner.log_dir, 'gradient_flow'),
            owner=type(self).__name__)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        """Watch the optimizer steps of an iteration to record."""
        if not self._bases or not self.every_n_train_iters(
                runner, self.interval):
            return
        wrappers = runner.optim_wrapper.values() if isinstance(
            runner.optim_wrapper, OptimWrapperDict) else [runner.optim_wrapper]
        self._handles += [
            wrapper.optimizer.register_step_pre_hook(self._record)
            for wrapper in wrappers
        ]

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        """Stop watching the optimizer steps; log what the step of this
        iteration recorded."""
        self._remove_handles()
        if not self._current:
            return
        scalars = {}
        for name, (max_grad, mean_grad) in self._current.items():
            scalars[f'grad_flow/{name}/max'] = max_grad
            scalars[f'grad_flow/{name}/mean'] = mean_grad
        runner.visualizer.add_scalars(scalars, step=runner.iter + 1)
        self._records.append(self._current)
        self._current = {}

    def after_train_epoch(self, runner) -> None:
        """Plot the bars recorded during the epoch."""
        if not self._records:
            return
        names = list(self._bases)
        grads = np.array([[
            record.get(name, (np.nan, np.nan)) for name in names
        ] for record in self._records])
        figure = plot_gradient_flow(
            names,
            grads[..., 0],
            grads[..., 1],
            title=f'Gradient flow, epoch {runner.epoch + 1}',
            log_scale=self.log_scale)
        os.makedirs(self._plot_dir, exist_ok=True)
        path = osp.join(self._plot_dir, f'epoch_{runner.epoch + 1}.png')
        figure.savefig(path, dpi=100)
        print_log(
            f'GradientFlowHook: gradient flow of {len(self._records)} '
            f'iterations plotted to {path}',
            logger='current')
        self._records = []

    @torch.no_grad()
    def _record(self, optimizer: torch.optim.Optimizer, args: tuple,
                kwargs: dict) -> None:
        for name, basis in self._bases.items():
            grad = basis.grad
            if grad is not None:
                magnitude = grad.abs()
                self._current[name] = (magnitude.max().item(),
                                       magnitude.mean().item())
