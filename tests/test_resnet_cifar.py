"""He et al.'s plain CIFAR ResNets (ZeroPadResNet_CIFAR), the baselines of
Table 3 of Learning Deeply Shared Filter Bases, and their configs."""
import functools
import os.path as osp
import re

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

import sharedbasis_mm  # noqa: F401
from sharedbasis_mm.analysis import build_model_from_config
from sharedbasis_mm.backbones import (SharedBasisResNet_CIFAR,
                                      ZeroPadResNet_CIFAR)

CONFIGS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                   'configs')


@functools.lru_cache(maxsize=None)
def load_config(*path: str) -> Config:
    return Config.fromfile(osp.join(CONFIGS, *path))


def hand_count(depth: int, classes: int = 10) -> int:
    """Parameters of He et al.'s CIFAR ResNet by hand: the stem (3 x 3,
    3 -> 16, BN), 2n 3 x 3 convolutions with BN per stage (the first of
    stages 2 and 3 from half the width), no shortcut parameters, the fc."""
    n = (depth - 2) // 6
    total = 3 * 16 * 9 + 2 * 16
    for width in (16, 32, 64):
        first_in = 16 if width == 16 else width // 2
        total += first_in * width * 9 + (2 * n - 1) * width * width * 9
        total += 2 * n * 2 * width
    return total + 64 * classes + classes


@pytest.mark.parametrize('name, depth, paper', [
    ('resnet56_1xb128_cifar10.py', 56, 0.85e6),
    ('resnet32_1xb128_cifar10.py', 32, 0.46e6),
])
def test_baseline_configs_have_the_papers_parameters(name, depth, paper):
    cfg = load_config('baselines', name)
    model = build_model_from_config(cfg)
    assert isinstance(model.backbone, ZeroPadResNet_CIFAR)
    count = sum(p.numel() for p in model.parameters())
    assert count == hand_count(depth)
    assert abs(count - paper) / paper < 0.01
    assert cfg.paper_reference.params == paper
    assert cfg.custom_hooks == []  # no shared basis to regularize


def test_same_recipe_as_the_shared_basis_sibling():
    cfg = load_config('baselines', 'resnet56_1xb128_cifar10.py')
    sibling = load_config('shared_basis', 'resnet56-s16u1_1xb128_cifar10.py')
    for key in ('optim_wrapper', 'param_scheduler', 'train_cfg',
                'train_dataloader', 'test_dataloader'):
        assert cfg[key] == sibling[key], key
    assert cfg.model.head == sibling.model.head
    assert [h.type for h in sibling.custom_hooks] == ['OrthogonalityLossHook']


def test_zero_pad_shortcut_and_keys_of_the_shared_basis_structure():
    torch.manual_seed(0)
    plain = ZeroPadResNet_CIFAR(depth=20).eval()
    shared = SharedBasisResNet_CIFAR(
        depth=20, num_stages=3, base_channels=16, strides=(1, 2, 2),
        dilations=(1, 1, 1), out_indices=(2, ), shortcut_type='pad',
        basis_cfg=dict(shared_rank=16, unique_rank=1))
    # outside the sharing blocks (block 1 on of each stage): the same keys
    # and shapes
    shared_state = shared.state_dict()
    unshared = {
        key: value.shape
        for key, value in plain.state_dict().items()
        if not re.match(r'layer\d\.[1-9]', key)
    }
    assert len(unshared) > 30
    assert all(shared_state[k].shape == s for k, s in unshared.items())
    block = plain.layer2[0]
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        identity = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 8, 8))
        expected = torch.relu(block.norm2(block.conv2(torch.relu(
            block.norm1(block.conv1(x))))) + identity)
        assert torch.allclose(block(x), expected, atol=1e-6)
    assert not list(block.downsample.parameters())
    assert plain(torch.randn(1, 3, 32, 32))[0].shape == (1, 64, 8, 8)


def test_deep_stem_is_refused():
    with pytest.raises(ValueError, match='deep_stem=True is not supported'):
        ZeroPadResNet_CIFAR(depth=20, deep_stem=True)
