"""Decomposing a plain pretrained model into a shared-basis one
(sharedbasis_mm.converters.plain_to_shared_basis)."""
from collections import OrderedDict

import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

import sharedbasis_mm  # noqa: F401 (registers the backbones)
from sharedbasis_mm.converters import (PlainCheckpointError,
                                       calibrate_norms,
                                       convert_plain_state_dict,
                                       decompose_shared_basis)
from sharedbasis_mm.layers import (BasisConv2d, SharedBasisConv2d,
                                   find_basis_users)


@pytest.fixture(scope='module', autouse=True)
def mmpretrain_scope():
    """Build in mmpretrain's scope, whatever another test of this process
    left as the default scope."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


TINY_RESNET = dict(stem_channels=8, base_channels=8)


def classifier(backbone: dict, channels: int) -> torch.nn.Module:
    return MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=backbone,
            neck=dict(type='GlobalAveragePooling'),
            head=dict(
                type='LinearClsHead', num_classes=5,
                in_channels=channels))).eval()


def randomize(model: torch.nn.Module) -> None:
    """Random norms (statistics and affine parameters), random
    coefficients; the inner norm of every SharedBasisConv2d the identity."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, _BatchNorm):
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 2)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.2)
            elif isinstance(module, SharedBasisConv2d):
                module.coefficients.weight.normal_(0, 0.3)
        for module in model.modules():
            if isinstance(module, SharedBasisConv2d):
                module.norm.running_mean.zero_()
                module.norm.running_var.fill_(1 - module.norm.eps)
                module.norm.weight.fill_(1)
                module.norm.bias.zero_()


def representable_plain_state(shared: torch.nn.Module) -> OrderedDict:
    """The plain state dict of weights that ``shared`` represents: each
    SharedBasisConv2d's ``A [B; U]``, each whole shared weight times a
    random scale per filter and block."""
    state = OrderedDict(shared.state_dict())
    for basis in find_basis_users(shared):
        del state[basis]
    for name, module in shared.named_modules():
        if isinstance(module, SharedBasisConv2d):
            for key in [k for k in state if k.startswith(name + '.')]:
                del state[key]
            state[f'{name}.weight'] = module.fuse().weight.detach()
        elif isinstance(module, BasisConv2d) and not name.endswith('.basis'):
            scales = torch.empty(module.out_channels).uniform_(-2, 2)
            state[f'{name}.weight'] = (scales[:, None, None, None] *
                                       module.weight.detach())
    return state


def relative_error(x: torch.Tensor, y: torch.Tensor) -> float:
    return ((x - y).norm() / y.norm()).item()


@pytest.mark.parametrize('plain_backbone, shared_backbone, channels', [
    (dict(type='ResNet', depth=18, **TINY_RESNET),
     dict(type='SharedBasisResNet', depth=18, **TINY_RESNET,
          basis_cfg=dict(shared_rank=4, unique_rank=1)), 64),
    (dict(type='ResNet', depth=18, **TINY_RESNET),
     dict(type='SharedBasisResNet', depth=18, **TINY_RESNET,
          basis_cfg=dict(shared_rank=3, unique_rank=2, num_bases=2)), 64),
    (dict(type='ResNet', depth=50, stem_channels=8, base_channels=4),
     dict(type='SharedBasisResNet', depth=50, stem_channels=8,
          base_channels=4, basis_cfg=dict(share='all')), 128),
    # ResNet20-S16U1 on He et al.'s CIFAR ResNet-20: 16 + 1 basis rows for
    # 16 filters, where only the refinement finds the shared basis
    (dict(type='ZeroPadResNet_CIFAR', depth=20),
     dict(type='SharedBasisResNet_CIFAR', depth=20, num_stages=3,
          base_channels=16, strides=(1, 2, 2), dilations=(1, 1, 1),
          out_indices=(2, ), shortcut_type='pad',
          basis_cfg=dict(shared_rank=16, unique_rank=1)), 64),
    (dict(type='MobileNetV2', widen_factor=0.25),
     dict(type='SharedBasisMobileNetV2', widen_factor=0.25,
          share='expand_project'), 1280),
], ids=['basic', 'basic-num_bases2', 'bottleneck-all', 'cifar-s16u1',
        'mobilenet-v2-expand_project'])
def test_representable_weights_convert_exactly(plain_backbone,
                                               shared_backbone, channels):
    torch.manual_seed(0)
    source = classifier(shared_backbone, channels)
    randomize(source)
    plain_state = representable_plain_state(source)
    plain = classifier(plain_backbone, channels)
    plain.load_state_dict(plain_state, strict=True)
    converted = classifier(shared_backbone, channels)
    state, report = convert_plain_state_dict(converted, plain_state)
    converted.load_state_dict(state, strict=True)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = plain(images, mode='tensor')
        logits = converted(images, mode='tensor')
    assert relative_error(logits, expected) < 1e-4
    assert max(c['relative_error'] for c in report['convs']) < 1e-5


def best_rank_error(weight: torch.Tensor, rank: int) -> float:
    """The squared error of the best rank-``rank`` approximation."""
    return torch.linalg.svdvals(weight.double())[rank:].square().sum().item()


def test_random_weights_error_between_bounds_and_basis_orthonormal():
    """On full-rank weights, the total error of a group is at least the
    sum of each weight's best rank-(n + u) error and at most that of the
    joint-SVD start (the stacked weights' top n right singular vectors,
    each weight then fitted best)."""
    torch.manual_seed(1)
    weights = [torch.randn(24, 72) for _ in range(4)]
    shared_rank, unique_rank = 8, 2
    fit = decompose_shared_basis(weights, shared_rank, [unique_rank] * 4)
    basis = torch.linalg.svd(torch.cat(weights).double())[2][:shared_rank]
    start = 0.
    for w in weights:
        w = w.double()
        residual = w - w @ basis.t() @ basis
        start += (w @ basis.t() @ basis -
                  w).square().sum().item() - sum(
                      torch.linalg.svdvals(residual)[:unique_rank].square()
                  ).item()
    lower = sum(best_rank_error(w, shared_rank + unique_rank)
                for w in weights)
    error = sum(fit.errors)
    assert fit.start_error == pytest.approx(start, rel=1e-9)
    assert lower < error < start
    reconstructed = sum(
        (w.double() - a @ torch.cat([fit.basis, u])).square().sum().item()
        for w, a, u in zip(weights, fit.coefficients, fit.unique))
    assert reconstructed == pytest.approx(error, rel=1e-9)
    gram = fit.basis @ fit.basis.t()
    assert (gram - torch.eye(shared_rank, dtype=gram.dtype)).abs().max() < 1e-5


def test_random_plain_model_groups_between_bounds():
    torch.manual_seed(2)
    backbone = dict(type='SharedBasisResNet', depth=18, **TINY_RESNET,
                    basis_cfg=dict(shared_rank=4, unique_rank=1))
    plain = classifier(dict(type='ResNet', depth=18, **TINY_RESNET), 64)
    plain_state = plain.state_dict()
    converted = classifier(backbone, 64)
    state, report = convert_plain_state_dict(converted, plain_state)
    converted.load_state_dict(state, strict=True)
    # 4 groups of one sharing block, each basis used by its two convolutions
    assert [len(g['layers']) for g in report['groups']] == [2] * 4
    for group, scale in zip(report['groups'], (1, 2, 4, 8)):
        weights = [
            plain_state[f'{name}.weight'].flatten(1)
            for name in group['layers']
        ]
        energy = sum(w.square().sum().item() for w in weights)
        lower = sum(best_rank_error(w, 5 * scale) for w in weights)
        error = group['relative_error']**2 * energy
        assert lower <= error * (1 + 1e-9)
        assert group['relative_error'] <= group['start_relative_error']
        basis = state[group['basis']].flatten(1).double()
        gram = basis @ basis.t()
        assert (gram - torch.eye(4 * scale, dtype=gram.dtype)).abs().max(
        ) < 1e-5
    # every unshared key is copied: the first block of each group, the
    # stem, the downsamples, the head
    for key in ('backbone.conv1.weight', 'backbone.layer2.0.conv1.weight',
                'backbone.layer2.0.downsample.0.weight',
                'backbone.layer3.1.bn2.running_var', 'head.fc.weight'):
        assert torch.equal(state[key], plain_state[key])


def test_plain_state_of_another_depth_names_the_first_unfit_key():
    converted = classifier(
        dict(type='SharedBasisResNet', depth=18, **TINY_RESNET,
             basis_cfg=dict(shared_rank=4, unique_rank=1)), 64)
    deeper = classifier(dict(type='ResNet', depth=34, **TINY_RESNET), 64)
    with pytest.raises(PlainCheckpointError,
                       match=r"'backbone\.layer1\.2\.conv1\.weight' is not "
                       r'in the plain model'):
        convert_plain_state_dict(converted, deeper.state_dict())
    bottleneck = classifier(
        dict(type='ResNet', depth=50, stem_channels=8, base_channels=2), 64)
    with pytest.raises(PlainCheckpointError,
                       match=r"'backbone\.layer1\.0\.conv1\.weight' has shape "
                       r'\(2, 8, 1, 1\); the plain model has \(8, 8, 3, 3\)'):
        convert_plain_state_dict(converted, bottleneck.state_dict())
