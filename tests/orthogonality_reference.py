"""Training numbers of the OrthogonalityLossHook, for the regression test of
test_orthogonality_loss_hook.py (not a test file itself).

:func:`train_case` trains the tiny shared-basis net (2 groups of 2 blocks, its
bases moved away from orthogonal) for 4 iterations through mmengine's Runner
with the hook, under one optimizer wrapper of :data:`CASES`, and returns per
iteration the logged ``loss``, ``loss_orth`` and ``log10_orth_error``, the
gradient of every shared basis at each backward pass and at each optimizer
step, and the bases after training.

Run as a script, it writes the numbers of every case to
``tests/data/orthogonality_reference.pt``, the reference the test compares
the hook with::

    PYTHONPATH=$PWD python tests/orthogonality_reference.py
"""
import os.path as osp
import tempfile
from typing import Callable, Dict, List

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper
from torch import Tensor

from sharedbasis_mm.layers import find_shared_bases
from tiny_shared_basis_net import (TinySharedBasisNet, build_runner,
                                   cpu_amp_optim_wrapper, perturb_bases)

REFERENCE = osp.join(
    osp.dirname(osp.abspath(__file__)), 'data', 'orthogonality_reference.pt')
ITERS = 4
LOGGED = ('loss', 'loss_orth', 'log10_orth_error')


def sgd(model: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


CASES: Dict[str, Callable[[torch.nn.Module, pytest.MonkeyPatch],
                          OptimWrapper]] = dict(
    fp32=lambda model, mp: OptimWrapper(sgd(model)),
    accumulate_2=lambda model, mp: OptimWrapper(
        sgd(model), accumulative_counts=2),
    clip_grad=lambda model, mp: OptimWrapper(
        sgd(model), clip_grad=dict(max_norm=0.5)),
    amp_bf16=lambda model, mp: cpu_amp_optim_wrapper(sgd(model), mp, 256.))


class LossRecorder(Hook):
    """Keeps the logged values of each training iteration."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.logged: Dict[str, List[float]] = {key: [] for key in LOGGED}

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        for key in LOGGED:
            self.logged[key].append(outputs[key].item())


def train_case(name: str) -> Dict[str, object]:
    """Train the tiny net with the hook under the optimizer wrapper of
    ``CASES[name]``, on one thread; what it logged and its gradients."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = perturb_bases(TinySharedBasisNet(num_blocks=2, num_groups=2))
        bases = find_shared_bases(model)
        backward_grads = {name: [] for name in bases}
        step_grads = {name: [] for name in bases}
        for basis_name, basis in bases.items():
            basis.register_hook(lambda grad, key=basis_name: backward_grads[
                key].append(grad.detach().clone()))
        recorder = LossRecorder()
        with pytest.MonkeyPatch.context() as mp, \
                tempfile.TemporaryDirectory() as work_dir:
            optim_wrapper = CASES[name](model, mp)

            def record_step_grads(optimizer, args, kwargs) -> None:
                for key, basis in bases.items():
                    step_grads[key].append(basis.grad.detach().clone())

            optim_wrapper.optimizer.register_step_pre_hook(record_step_grads)
            runner = build_runner(
                model,
                work_dir, [dict(type='OrthogonalityLossHook')],
                max_iters=ITERS,
                optim_wrapper=optim_wrapper,
                log_level='WARNING')
            runner.register_hook(recorder)
            runner.train()
    finally:
        torch.set_num_threads(threads)

    def stacked(grads: Dict[str, List[Tensor]]) -> Dict[str, Tensor]:
        return {key: torch.stack(values) for key, values in grads.items()}

    return dict(
        logged={
            key: torch.tensor(values, dtype=torch.float64)
            for key, values in recorder.logged.items()
        },
        backward_grads=stacked(backward_grads),
        step_grads=stacked(step_grads),
        bases={key: basis.detach().clone()
               for key, basis in bases.items()})


if __name__ == '__main__':
    torch.save({name: train_case(name) for name in CASES}, REFERENCE)
    print(f'reference of {len(CASES)} cases written to {REFERENCE}')
