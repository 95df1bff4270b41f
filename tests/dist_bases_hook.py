"""A hook for the test of tools/dist_train.sh (test_dist_train.py), imported
by its config through ``custom_imports``; not a test file itself."""
import os.path as osp

import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from sharedbasis_mm.layers import find_shared_bases
from sharedbasis_mm.registry import HOOKS


@HOOKS.register_module()
class SaveBasesHook(Hook):
    """Each rank saves its shared bases before and after training to
    ``<out_dir>/bases_rank<r>_{before,after}.pt``, with the world size, the
    model wrapper and the device of the bases."""

    priority = 'LOWEST'

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir

    def _save(self, runner, when: str) -> None:
        wrapped = is_model_wrapper(runner.model)
        model = runner.model.module if wrapped else runner.model
        bases = {
            name: basis.detach().clone()
            for name, basis in find_shared_bases(model).items()
        }
        torch.save(
            dict(
                bases=bases,
                world_size=get_world_size(),
                wrapper=type(runner.model).__name__,
                iters=runner.iter),
            osp.join(self.out_dir, f'bases_rank{get_rank()}_{when}.pt'))

    def before_train(self, runner) -> None:
        self._save(runner, 'before')

    def after_train(self, runner) -> None:
        self._save(runner, 'after')
