"""Run by test_orthogonality_loss_hook.py under ``torch.distributed.run``.

Each rank trains TinySharedBasisNet for 4 iterations with the
OrthogonalityLossHook in DDP (gloo, CPU), checkpointing at iteration 2, then
resumes a second runner from that checkpoint to iteration 4, and writes to
``<out_dir>/rank<r>.json`` the losses of each iteration of both runs and a
hash of every shared basis.
"""
import hashlib
import json
import os.path as osp
import sys

import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook

from sharedbasis_mm.layers import SharedBasisConv2d, find_shared_bases
from sharedbasis_mm.registry import HOOKS
from tiny_shared_basis_net import (TinySharedBasisNet, build_runner,
                                   perturb_bases)


@HOOKS.register_module()
class LossRecorderHook(Hook):
    """Keeps the logged losses of every iteration in ``self.losses``."""

    def __init__(self) -> None:
        self.losses = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self.losses[runner.iter + 1] = {
            key: value.item()
            for key, value in outputs.items()
        }


def basis_hash(model) -> str:
    digest = hashlib.sha256()
    for name, basis in sorted(find_shared_bases(model).items()):
        digest.update(name.encode())
        digest.update(basis.detach().numpy().tobytes())
    return digest.hexdigest()


def is_tied(model) -> bool:
    basis, = find_shared_bases(model).values()
    blocks = [m for m in model.modules() if isinstance(m, SharedBasisConv2d)]
    return len(blocks) == 3 and all(
        block.shared_basis is basis
        and block.basis.shared_basis.data_ptr() ==
        basis.data_ptr() for block in blocks)


def train(out_dir: str, **kwargs):
    torch.manual_seed(0)
    model = perturb_bases(TinySharedBasisNet())
    runner = build_runner(
        model,
        out_dir,
        [dict(type='OrthogonalityLossHook'),
         dict(type='LossRecorderHook')],
        max_iters=4,
        launcher='pytorch',
        cfg=dict(
            model_wrapper_cfg=dict(
                type='MMDistributedDataParallel', device_ids=None)),
        **kwargs)
    initial_hash = basis_hash(model)
    runner.train()
    recorder, = [h for h in runner.hooks if isinstance(h, LossRecorderHook)]
    return model, initial_hash, recorder.losses


def main(out_dir: str) -> None:
    # mmengine's init_dist sets a CUDA device; on the CPU the process group
    # is initialised here and the runner finds it initialised.
    torch.distributed.init_process_group('gloo')
    model, initial_hash, losses = train(out_dir, checkpoint_interval=2)
    resumed, _, resumed_losses = train(
        osp.join(out_dir, 'resumed'),
        load_from=osp.join(out_dir, 'iter_2.pth'),
        resume=True)
    report = dict(
        world_size=get_world_size(),
        initial_basis_hash=initial_hash,
        basis_hash=basis_hash(model),
        resumed_basis_hash=basis_hash(resumed),
        tied=is_tied(model) and is_tied(resumed),
        losses=losses,
        resumed_losses=resumed_losses)
    with open(osp.join(out_dir, f'rank{get_rank()}.json'), 'w') as f:
        json.dump(report, f)
    torch.distributed.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1])
