"""A tiny shared-basis classifier, random data and a CPU runner for the tests
of the hooks and the analysis tools (imported by the test files and the DDP
script; not a test file itself)."""
import copy
import glob
import itertools
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.optim import AmpOptimWrapper
from mmengine.optim.optimizer import amp_optimizer_wrapper
from mmengine.runner import Runner
from torch import Tensor
from torch.utils.data import Dataset

from sharedbasis_mm.layers import SharedBasisConv2d, find_shared_bases
from sharedbasis_mm.registry import MODELS


@MODELS.register_module()
class TinySharedBasisNet(BaseModel):
    """Stem, ``num_groups`` groups of ``num_blocks`` residual blocks whose
    convolutions share one basis per group (``rank - unique_rank`` 3 x 3
    elements), linear head."""

    def __init__(self,
                 channels: int = 8,
                 rank: int = 6,
                 unique_rank: int = 1,
                 num_blocks: int = 3,
                 num_groups: int = 1,
                 num_classes: int = 4,
                 norm_cfg: Optional[Dict] = dict(type='BN')) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        # The first layer of each group creates (and registers) its basis,
        # the others use it.
        self.blocks = nn.ModuleList()
        for index in range(num_groups * num_blocks):
            first = self.blocks[index - index % num_blocks] if (
                index % num_blocks) else None
            self.blocks.append(
                SharedBasisConv2d(
                    channels,
                    channels,
                    3,
                    padding=1,
                    shared_rank=rank - unique_rank,
                    unique_rank=unique_rank,
                    shared_basis=first.shared_basis if first else None,
                    norm_cfg=norm_cfg))
        self.head = nn.Linear(channels, num_classes)

    def forward(self, inputs: Tensor, labels: Tensor, mode: str = 'tensor'):
        x = self.stem(inputs)
        for block in self.blocks:
            x = x + F.relu(block(x))
        logits = self.head(x.mean((2, 3)))
        if mode == 'loss':
            return dict(loss_cls=F.cross_entropy(logits, labels))
        return logits


def perturb_bases(model: nn.Module, scale: float = 0.1) -> nn.Module:
    """Move every shared basis of ``model`` away from orthogonal by adding
    seeded Gaussian noise (the tiny net's error grows from 0 to > 1)."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for basis in find_shared_bases(model).values():
            basis.add_(scale * torch.randn(basis.shape, generator=generator))
    return model


class PlainNet(BaseModel):
    """A model without any shared basis."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, inputs: Tensor, labels: Tensor, mode: str = 'tensor'):
        logits = self.conv(inputs).mean((2, 3))
        if mode == 'loss':
            return dict(loss_cls=F.cross_entropy(logits, labels))
        return logits


class RandomImages(Dataset):
    """Random 3 x 16 x 16 images with random labels, the same for an index
    every time."""

    def __init__(self, length: int = 64, num_classes: int = 4) -> None:
        self.length = length
        self.num_classes = num_classes

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Dict[str, Tensor]:
        generator = torch.Generator().manual_seed(index)
        return dict(
            inputs=torch.randn(3, 16, 16, generator=generator),
            labels=torch.randint(self.num_classes, (), generator=generator))


def cpu_amp_optim_wrapper(optimizer: torch.optim.Optimizer, monkeypatch,
                          loss_scale: float) -> AmpOptimWrapper:
    """mmengine's AmpOptimWrapper autocasting to bf16 on the CPU.

    It asserts a GPU (``monkeypatch`` lifts that for the test) and builds a
    CUDA GradScaler, which disables itself on the CPU; torch's CPU
    GradScaler with an initial scale of ``loss_scale`` replaces it.
    """
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available',
                        lambda: True)
    wrapper = AmpOptimWrapper(optimizer=optimizer, dtype='bfloat16')
    wrapper.loss_scaler = torch.amp.GradScaler('cpu', init_scale=loss_scale)
    return wrapper


_RUNNER_COUNT = itertools.count()


def build_runner(model: nn.Module,
                 work_dir: str,
                 custom_hooks: List,
                 max_iters: int = 4,
                 optim_wrapper: Optional[Dict] = None,
                 checkpoint_interval: Optional[int] = None,
                 train_cfg: Optional[Dict] = None,
                 num_samples: int = 64,
                 dataset: Optional[Sequence] = None,
                 batch_size: int = 4,
                 **kwargs) -> Runner:
    """A CPU runner training ``model`` with SGD on ``num_samples``
    :class:`RandomImages` (or ``dataset``, a list of samples collated as
    lists) in batches of ``batch_size``, without shuffling.

    It trains ``max_iters`` iterations unless ``train_cfg`` says otherwise,
    logs every iteration (unsmoothed) and checkpoints every
    ``checkpoint_interval`` (default ``max_iters``) iterations. Each runner
    of a process gets its own experiment name; ``kwargs`` go to the
    ``Runner``.
    """
    train_cfg = train_cfg or dict(by_epoch=False, max_iters=max_iters)
    return Runner(
        model=model,
        work_dir=work_dir,
        experiment_name=f'tiny_shared_basis_{next(_RUNNER_COUNT)}',
        train_dataloader=dict(
            dataset=RandomImages(num_samples) if dataset is None else dataset,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate' if dataset is None else
                            'pseudo_collate'),
            batch_size=batch_size,
            num_workers=0),
        train_cfg=train_cfg,
        optim_wrapper=optim_wrapper
        or dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        custom_hooks=copy.deepcopy(custom_hooks),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(
                type='CheckpointHook',
                by_epoch=train_cfg['by_epoch'],
                interval=checkpoint_interval or max_iters)),
        log_processor=dict(window_size=1, by_epoch=train_cfg['by_epoch']),
        **kwargs)


def logged_scalars(runner: Runner) -> Dict[str, List[Tuple[int, float]]]:
    """The scalars the runner's visualizer wrote, by key: (step, value)."""
    path, = glob.glob(osp.join(runner.log_dir, 'vis_data', 'scalars.json'))
    scalars: Dict[str, List[Tuple[int, float]]] = {}
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            step = record.pop('step')
            for key, value in record.items():
                scalars.setdefault(key, []).append((step, value))
    return scalars


def text_log(runner: Runner) -> str:
    """The text log the runner wrote."""
    path, = glob.glob(osp.join(runner.log_dir, '*.log'))
    with open(path) as f:
        return f.read()
