"""The shared-basis DenseNet and ResNeXt of Table 2 of Learning Deeply
Shared Filter Bases, and the grouped bases the ResNeXt needs."""
import json
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

import sharedbasis_mm  # noqa: F401
from sharedbasis_mm.analysis import build_model_from_config, count_parameters
from sharedbasis_mm.backbones import (SharedBasisDenseNet,
                                      SharedBasisDenseNet_CIFAR,
                                      SharedBasisResNeXt,
                                      SharedBasisResNeXt_CIFAR)
from sharedbasis_mm.layers import (BasisConv2d, SharedBasisConv2d,
                                   find_basis_users, find_shared_bases,
                                   make_filter_basis)
from reference_checks import assert_gradients, randomize_batch_norms

ROOT = osp.dirname(osp.dirname(__file__))
DATA = osp.join(ROOT, 'tests', 'data', 'net_rl2')

# config, Table 2's params and FLOPs, the fixture of the authors' model
TABLE_2 = [
    ('shared_basis/densenet121-s16u1_1xb128_cifar100', 5.08e6, 0.72e9,
     'cifar100_densenet121_s16u1'),
    ('baselines/densenet121_1xb128_cifar100', 7.05e6, 0.91e9,
     'cifar100_densenet121'),
    ('shared_basis/resnext50-32x4d-s64u4_1xb128_cifar100', 19.3e6, 1.19e9,
     'cifar100_resnext50_s64u4'),
    ('baselines/resnext50-32x4d_1xb128_cifar100', 23.17e6, 1.36e9,
     'cifar100_resnext50_32x4d'),
]
# the authors' DenseNet121_SingleShared holds a fourth basis, 16 x 128 x 3
# x 3, that no layer uses; our model of it does not
UNUSED_BASIS = 16 * 128 * 3 * 3


def build(config):
    return build_model_from_config(
        Config.fromfile(osp.join(ROOT, 'configs', config + '.py')))


def authors_params(fixture):
    with open(osp.join(DATA, fixture + '.json')) as f:
        return json.load(f)['params']


@pytest.mark.parametrize('config,params,flops,fixture', TABLE_2)
def test_parameters_within_half_a_percent_of_table_2(config, params, flops,
                                                     fixture):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config + '.py'))
    assert cfg.paper_reference.params == params
    assert cfg.paper_reference.flops == flops
    model = build(config)
    count = count_parameters(model)
    assert abs(count / params - 1) < 0.005
    # exactly the authors' model, less the basis it never uses
    unused = UNUSED_BASIS if fixture == 'cifar100_densenet121_s16u1' else 0
    assert count == authors_params(fixture) - unused


def test_densenet_bases_one_per_dense_block_unless_told():
    """The group owns its basis; every layer of its dense block uses it."""
    backbone = SharedBasisDenseNet_CIFAR(
        arch=dict(growth_rate=4, depths=[2, 3, 2], init_channels=8),
        shared_rank=3,
        unique_rank=1)
    users = find_basis_users(backbone)
    assert list(find_shared_bases(backbone)) == [
        f'stages.{i}.shared_basis' for i in range(3)
    ]
    assert [key for key in backbone.state_dict() if 'shared_basis' in key
            ] == list(users)
    assert users['stages.1.shared_basis'] == [
        f'stages.1.block.{j}.conv2.basis' for j in range(3)
    ]
    shared = SharedBasisDenseNet_CIFAR(
        arch=dict(growth_rate=4, depths=[2, 3, 2], init_channels=8),
        shared_rank=3,
        unique_rank=1,
        basis_indices=(0, 1, 1))
    assert sorted(find_shared_bases(shared)) == [
        'stages.0.shared_basis', 'stages.1.shared_basis'
    ]
    assert len(find_basis_users(shared)['stages.1.shared_basis']) == 5
    assert (count_parameters(backbone) - count_parameters(shared) ==
            3 * 16 * 3 * 3)


def test_densenet_structure_options():
    arch = dict(growth_rate=4, depths=[2, 2], init_channels=8)
    plain = SharedBasisDenseNet(arch=arch)
    assert not find_shared_bases(plain)
    assert isinstance(plain.transitions[0].act, torch.nn.ReLU)
    cifar = SharedBasisDenseNet_CIFAR(arch=arch, transition_act=False)
    assert isinstance(cifar.transitions[0].act, torch.nn.Identity)
    assert [type(m) for m in cifar.stem] == [torch.nn.Conv2d]
    x = torch.randn(2, 3, 32, 32)
    assert cifar(x)[0].shape == (2, 8 + 4 * 2, 16, 16)
    assert plain(x)[0].shape == (2, 8 + 4 * 2, 4, 4)


def test_densenet_forward_backward_and_frozen_stages():
    backbone = SharedBasisDenseNet_CIFAR(
        arch=dict(growth_rate=4, depths=[2, 2, 2], init_channels=8),
        shared_rank=3,
        unique_rank=1,
        out_indices=(1, 2),
        frozen_stages=1)
    x = torch.randn(2, 3, 16, 16)
    outs = backbone(x)
    assert [o.shape for o in outs] == [(2, 8, 4, 4), (2, 16, 4, 4)]
    sum(o.sum() for o in outs).backward()
    stages = backbone.stages
    assert not stages[0].shared_basis.requires_grad
    assert stages[0].shared_basis.grad is None
    assert_gradients(backbone, lambda m, x: sum(o.sum() for o in m(x)), [x],
                     params=[stages[1].shared_basis])
    assert not stages[0].block[1].conv2.coefficients.weight.requires_grad


# a narrow SharedBasisResNeXt-50: 4 groups of width 4, 16 channels first
SMALL_RESNEXT = dict(
    depth=50,
    groups=4,
    base_width=4,
    base_channels=16,
    shared_rank=8,
    unique_rank=4,
    shared_groups=4,
    unique_groups=1)


def small_resnext(**kwargs):
    return SharedBasisResNeXt(**dict(SMALL_RESNEXT, **kwargs))


def test_resnext_bases_and_their_scaling():
    backbone = small_resnext()
    users = find_basis_users(backbone)
    # one Parameter and one state-dict key per group, owned by the group
    assert list(users) == [f'layer{i}.shared_basis' for i in range(1, 5)]
    assert [key for key in backbone.state_dict() if 'shared_basis' in key
            ] == list(users)
    bases = find_shared_bases(backbone)
    for i, (name, blocks) in enumerate(users.items()):
        layer = getattr(backbone, f'layer{i + 1}')
        assert blocks == [
            f'layer{i + 1}.{j}.conv2' for j in range(1, len(layer))
        ]
        # n and the unique part scale with the width, the shared groups not
        width = 16 * 2**i
        assert bases[name].shape == (8 * 2**i, width // 4, 3, 3)
        conv = layer[1].conv2
        assert conv.groups == 4
        assert conv.unique_weight.shape == (4 * 2**i, width // 2**i, 3, 3)
        assert conv.unique_groups == 2**i
    first = backbone.layer1[0]
    assert type(first.conv2) is torch.nn.Conv2d and first.conv2.groups == 4


def test_resnext_in_mmdet_forward_backward():
    from mmdet.registry import MODELS
    backbone = MODELS.build(
        dict(
            type='SharedBasisResNeXt',
            frozen_stages=1,
            norm_eval=True,
            **SMALL_RESNEXT))
    backbone.train()
    x = torch.randn(2, 3, 64, 64)
    outs = backbone(x)
    assert [o.shape[1:] for o in outs] == [(64, 16, 16), (128, 8, 8),
                                           (256, 4, 4), (512, 2, 2)]
    sum(o.sum() for o in outs).backward()
    assert not backbone.layer1[1].conv2.shared_basis.requires_grad
    assert_gradients(backbone, lambda m, x: sum(o.sum() for o in m(x)), [x],
                     params=[backbone.layer2[1].conv2.shared_basis])


def test_plain_resnext_cifar_is_mmdet_resnext_with_the_cifar_stem():
    plain = SharedBasisResNeXt_CIFAR(
        depth=50, groups=4, base_width=4, base_channels=16)
    assert not find_shared_bases(plain)
    assert plain.conv1.kernel_size == (3, 3) and plain.conv1.stride == (1, 1)
    assert isinstance(plain.maxpool, torch.nn.Identity)
    assert plain(torch.randn(1, 3, 32, 32))[-1].shape == (1, 512, 4, 4)


@pytest.mark.parametrize('groups,unique_groups', [(1, 1), (4, 2), (2, 1)])
def test_grouped_basis_conv_is_its_two_grouped_convolutions(
        groups, unique_groups):
    basis = make_filter_basis(8, 4, 3, groups=groups)
    conv = BasisConv2d(
        8,
        6,
        3,
        padding=1,
        stride=2,
        groups=groups,
        unique_rank=2,
        unique_groups=unique_groups,
        shared_basis=basis)
    x = torch.randn(2, 8, 9, 9)
    expected = torch.cat([
        F.conv2d(x, basis, None, 2, 1, 1, groups),
        F.conv2d(x, conv.unique_weight, None, 2, 1, 1, unique_groups)
    ], 1)
    torch.testing.assert_close(conv(x), expected)
    # `weight` is the equal ungrouped basis, which `fuse` copies
    torch.testing.assert_close(F.conv2d(x, conv.weight, None, 2, 1), expected)
    torch.testing.assert_close(conv.fuse()(x), expected)


def test_grouped_shared_basis_conv_fuses():
    layer = randomize_batch_norms(SharedBasisConv2d(
        8, 5, 3, padding=1, groups=2, shared_rank=4, unique_rank=2)).eval()
    x = torch.randn(2, 8, 6, 6)
    torch.testing.assert_close(layer.fuse()(x), layer(x), rtol=1e-4,
                               atol=1e-5)


@pytest.mark.parametrize('build_model,match', [
    (lambda: make_filter_basis(8, 6, 3, groups=4), 'num_elements=6'),
    (lambda: make_filter_basis(6, 4, 3, groups=4), 'in_channels=6'),
    (lambda: BasisConv2d(8, 6, 3, unique_rank=3, unique_groups=2),
     'unique_rank=3'),
    (lambda: BasisConv2d(
        8,
        6,
        3,
        groups=2,
        unique_rank=2,
        shared_basis=make_filter_basis(8, 4, 3)), 'groups=2'),
    (lambda: SharedBasisDenseNet(arch='121', basis_indices=(0, 1, 2)),
     'basis_indices'),
    (lambda: SharedBasisDenseNet(
        arch='121', shared_rank=16, basis_indices=(0, 1, 2)), 'basis_indices'),
    (lambda: SharedBasisDenseNet(arch='121', shared_rank=-1), 'shared_rank'),
    (lambda: SharedBasisDenseNet(arch='121', unique_rank=1), 'unique_rank'),
    (lambda: SharedBasisResNeXt(depth=34), 'depth=34'),
    (lambda: SharedBasisResNeXt(depth=50, unique_rank=4), 'unique_rank'),
    (lambda: SharedBasisResNeXt(depth=50, shared_groups=16),
     'shared_groups=16 needs a shared basis'),
    (lambda: SharedBasisResNeXt(depth=50, unique_groups=2),
     'unique_groups=2 needs a shared basis'),
    (lambda: SharedBasisResNeXt(depth=50, shared_rank=8, shared_groups=0),
     'shared_groups'),
    (lambda: small_resnext(shared_rank=6), 'num_elements=6'),
    (lambda: small_resnext(conv_cfg=dict(type='TBC', blocks=2)), 'conv_cfg'),
])
def test_bad_arguments_are_named(build_model, match):
    with pytest.raises(ValueError, match=match):
        build_model()
