"""The start-up of the hooks that act on the shared filter bases of the
trained model."""
import logging
from typing import Dict, List

import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch.utils.hooks import RemovableHandle

from ..layers import find_shared_bases


class SharedBasisHook(Hook):
    """Base of the hooks that act on the shared filter bases of the model.

    On ``before_train`` (after ``load_checkpoint``/``resume``) it finds the
    bases of the model (of the module under a model wrapper such as
    ``MMDistributedDataParallel``) and calls :meth:`start` with the model,
    or warns, once, that the model has none and what is then not done
    (:attr:`inactive`). The torch hooks a subclass registers (on the model,
    on the optimizer) go to ``self._handles`` and are removed in
    ``after_train``; mmengine calls no hook when training raises, so the
    ones a failed run left are removed at the next ``before_train``.
    """

    #: what the hook does not do for a model without a shared basis
    inactive = 'the hook does nothing'

    def __init__(self) -> None:
        self._bases: Dict[str, nn.Parameter] = {}
        self._handles: List[RemovableHandle] = []

    def before_train(self, runner) -> None:
        """Find the shared bases of the model; start on them."""
        self._remove_handles()  # what a run that raised left
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        self._bases = find_shared_bases(model)
        if self._bases:
            self.start(runner, model)
        else:
            print_log(
                f'{type(self).__name__}: {type(model).__name__} has no '
                f'shared filter basis; {self.inactive}',
                logger='current',
                level=logging.WARNING)

    def start(self, runner, model: nn.Module) -> None:
        """Begin the work on ``self._bases``, the bases of ``model``.

        Args:
            runner (Runner): The runner about to train.
            model (nn.Module): The trained model, unwrapped.
        """

    def after_train(self, runner) -> None:
        """Leave the model and the optimizer as they were found."""
        self._remove_handles()

    def _remove_handles(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
