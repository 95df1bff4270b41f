"""Gradients flowing into shared filter bases (Learning Deeply Shared Filter Bases, Figure 3)."""
import logging
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.hooks.hook import DATA_BATCH, Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict
from torch.utils.hooks import RemovableHandle

from ..analysis import plot_gradient_flow
from ..layers import find_shared_bases
from ..registry import HOOKS


@HOOKS.register_module()
class GradientFlowHook(Hook):
    """Record, log and plot the gradients of the shared filter bases.

    Every ``interval`` training iterations, the maximum and the mean
    absolute gradient of each shared filter basis of the model are
    recorded as the optimizer is about to step (so after gradient
    accumulation, the cross-rank reduction, mixed-precision unscaling and
    gradient clipping: the gradient the optimizer applies), and logged
    through the runner's visualizer as ``grad_flow/<basis>/max`` and
    ``grad_flow/<basis>/mean`` (TensorBoard or any configured backend shows
    them). At the end of each epoch (once for an iteration-based loop) the
    recorded bars are drawn overlapped, as Figure 3 of Learning Deeply Shared Filter Bases, into
    ``<out_dir>/epoch_<n>.png``. An iteration without an optimizer step
    (accumulating, or skipped by the loss scaler) records nothing.

    Args:
        interval (int): Record every ``interval`` iterations. Defaults to
            10, as Figure 3.
        out_dir (str, optional): Where the plots go. Defaults to
            ``<runner.log_dir>/gradient_flow``.
        log_scale (bool): Logarithmic gradient axis in the plots.
            Defaults to False.
    """

    priority = 'NORMAL'

    def __init__(self,
                 interval: int = 10,
                 out_dir: Optional[str] = None,
                 log_scale: bool = False) -> None:
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'interval must be a positive integer, got '
                             f'interval={interval!r}')
        self.interval = interval
        self.out_dir = out_dir
        self.log_scale = log_scale
        self._bases: Dict[str, nn.Parameter] = {}
        self._plot_dir = out_dir
        self._handles: List[RemovableHandle] = []
        self._recording = False
        self._current: Dict[str, Tuple[float, float]] = {}
        self._records: List[Dict[str, Tuple[float, float]]] = []

    def before_train(self, runner) -> None:
        """Find the bases and watch the steps of their optimizers."""
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        self._bases = find_shared_bases(model)
        if not self._bases:
            print_log(
                f'GradientFlowHook: {type(model).__name__} has no shared '
                f'filter basis; no gradient is recorded',
                logger='current',
                level=logging.WARNING)
            return
        self._plot_dir = self.out_dir or osp.join(runner.log_dir,
                                                  'gradient_flow')
        wrappers = runner.optim_wrapper.values() if isinstance(
            runner.optim_wrapper,
            OptimWrapperDict) else [runner.optim_wrapper]
        for wrapper in wrappers:
            self._handles.append(
                wrapper.optimizer.register_step_pre_hook(self._record))

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        self._recording = bool(self._bases) and self.every_n_train_iters(
            runner, self.interval)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        """Log what the optimizer step of this iteration recorded."""
        self._recording = False
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

    def after_train(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @torch.no_grad()
    def _record(self, optimizer: torch.optim.Optimizer, args: tuple,
                kwargs: dict) -> None:
        if not self._recording:
            return
        for name, basis in self._bases.items():
            grad = basis.grad
            if grad is not None:
                magnitude = grad.abs()
                self._current[name] = (magnitude.max().item(),
                                       magnitude.mean().item())
