"""BaseResNet: mmpretrain's stochastic depth (``drop_path_rate``) on mmdet's
blocks, checked against mmpretrain's ResNet and mmdet's ResNet with the same
weights, and the arguments it refuses."""
import pytest
import torch
from mmcv.cnn.bricks import ContextBlock, DropPath
from mmdet.models.backbones import ResNet as MMDetResNet
from mmdet.models.backbones.resnet import BasicBlock as MMDetBasicBlock
from mmpretrain.models.backbones import ResNet as MMPretrainResNet
from torch import nn

from sharedbasis_mm.backbones.base_resnet import BaseResNet, DropPathMixin

# small widths: a seeded forward in a fraction of a second
SMALL = dict(stem_channels=8, base_channels=8, out_indices=(0, 1, 2, 3))
PLUGINS = [
    dict(
        cfg=dict(type='ContextBlock', ratio=1. / 4, postfix=i),
        stages=(False, True, True, False),
        position=f'after_conv{i}') for i in (1, 2, 3)
]


def images(batch: int = 8) -> torch.Tensor:
    return torch.randn(
        batch, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def seeded(model: nn.Module, x: torch.Tensor, seed: int) -> tuple:
    torch.manual_seed(seed)
    return model(x)


def drop_rates(blocks) -> list:
    """Each block's drop probability, 0 for an identity ``drop_path``."""
    return [getattr(block.drop_path, 'drop_prob', 0.) for block in blocks]


def mmpretrain_blocks(model: nn.Module) -> list:
    return [
        block for name in model.res_layers for block in getattr(model, name)
    ]


@pytest.mark.parametrize('depth', [18, 50])
def test_drop_path_as_mmpretrain_resnet(depth):
    """Same weights, same seed: the outputs of a training step are
    mmpretrain's, with the same rate on each block."""
    reference = MMPretrainResNet(depth, drop_path_rate=0.2, **SMALL)
    model = BaseResNet(depth, drop_path_rate=0.2, **SMALL)
    model.load_state_dict(reference.state_dict())
    rates = drop_rates(model.residual_blocks())
    assert rates == drop_rates(mmpretrain_blocks(reference))
    # rising linearly from 0 (no DropPath) at the first block to the rate
    assert rates == pytest.approx(
        [0.2 * i / (len(rates) - 1) for i in range(len(rates))], abs=1e-7)
    assert type(model.layer1[0].drop_path) is nn.Identity
    assert all(
        type(block.drop_path) is DropPath
        for block in model.residual_blocks()[1:])
    x = images()
    reference.train()
    model.train()
    for seed in (0, 1):
        for out, expected in zip(
                seeded(model, x, seed), seeded(reference, x, seed)):
            torch.testing.assert_close(out, expected)
    # the branches are dropped at random: another seed, another output
    assert not torch.allclose(
        seeded(model, x, 0)[-1], seeded(model, x, 1)[-1])
    # in eval mode, no branch is dropped
    plain = BaseResNet(depth, **SMALL)
    plain.load_state_dict(model.state_dict())
    model.eval()
    plain.eval()
    for out, expected in zip(seeded(model, x, 0), seeded(plain, x, 1)):
        torch.testing.assert_close(out, expected)


@pytest.mark.parametrize('depth, plugins', [(18, None), (50, PLUGINS)])
def test_blocks_forward_as_mmdet(depth, plugins):
    """Without a rate, the mixin's forward is mmdet's, plugins included."""
    torch.manual_seed(0)
    reference = MMDetResNet(depth, plugins=plugins, norm_eval=False, **SMALL)
    model = BaseResNet(depth, plugins=plugins, **SMALL)
    contexts = [m for m in reference.modules() if isinstance(m, ContextBlock)]
    # three in each block of layer2 and layer3
    assert len(contexts) == (3 * (4 + 6) if plugins else 0)
    with torch.no_grad():  # their last convolution starts at zero
        for param in nn.ModuleList(contexts).parameters():
            param.normal_(std=0.1)
    model.load_state_dict(reference.state_dict())
    assert all(
        type(block.drop_path) is nn.Identity
        for block in model.residual_blocks())
    x = images(2)
    reference.train()
    model.train()
    for out, expected in zip(model(x), reference(x)):
        torch.testing.assert_close(out, expected)


def outputs_and_input_grad(model: nn.Module, seed: int) -> tuple:
    """A seeded training forward in double precision (the recomputation may
    take other float32 kernels), then the gradient of the input."""
    model.double().train()
    x = images(4).double().requires_grad_()
    outs = seeded(model, x, seed)
    sum(out.sum() for out in outs).backward()
    return outs, x.grad


@pytest.mark.parametrize('depth', [18, 50])
def test_with_cp_keeps_outputs_and_gradients_with_drop_path(depth):
    """The checkpointed blocks drop the same branches when recomputed."""
    torch.manual_seed(0)
    model = BaseResNet(depth, drop_path_rate=0.5, **SMALL)
    checkpointed = BaseResNet(
        depth, drop_path_rate=0.5, with_cp=True, **SMALL)
    checkpointed.load_state_dict(model.state_dict())
    torch.testing.assert_close(
        outputs_and_input_grad(checkpointed, seed=3),
        outputs_and_input_grad(model, seed=3))


@pytest.mark.parametrize('rate, error, match', [
    (-0.1, ValueError, r'drop_path_rate must be a finite number >= 0.0, '
     r'got drop_path_rate=-0.1'),
    (1.0, ValueError, r'drop_path_rate=1.0 out of range: the last block '
     r'would always drop its branch; expected a probability >= 0 and < 1'),
    (1.5, ValueError, 'drop_path_rate=1.5'),
    (float('nan'), ValueError, 'drop_path_rate=nan'),
    ('0.1', TypeError, "drop_path_rate='0.1'"),
])
def test_bad_drop_path_rate(rate, error, match):
    with pytest.raises(error, match=f'^BaseResNet: .*{match}'):
        BaseResNet(18, drop_path_rate=rate)


class PlainBlockResNet(BaseResNet):
    """A BaseResNet on mmdet's own BasicBlock, which has no drop_path."""

    arch_settings = {18: (MMDetBasicBlock, (2, 2, 2, 2))}


def test_drop_path_refused_for_blocks_without_the_mixin():
    assert not issubclass(MMDetBasicBlock, DropPathMixin)
    PlainBlockResNet(18, **SMALL)
    with pytest.raises(
            ValueError,
            match=r'PlainBlockResNet: drop_path_rate=0.1 is not supported '
            r'by its blocks \(BasicBlock, which has no DropPathMixin\)'):
        PlainBlockResNet(18, drop_path_rate=0.1)


@pytest.mark.parametrize('depth', [18, 50])
def test_dcn_refused_by_name(depth):
    dcn = dict(type='DCN', deform_groups=1)
    with pytest.raises(
            ValueError,
            match=r"BaseResNet: dcn=\{'type': 'DCN', 'deform_groups': 1\} "
            r'is not supported'):
        BaseResNet(depth, dcn=dcn, stage_with_dcn=(False, True, True, True))
