import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.runner import save_checkpoint

import sharedbasis_mm  # noqa: F401
from sharedbasis_mm.analysis import (build_model_from_config, count_flops,
                                     count_parameters)
from sharedbasis_mm.backbones import (SharedBasisMobileNetV2,
                                      SharedBasisResNet,
                                      SharedBasisResNet_CIFAR)
from sharedbasis_mm.layers import (BasisConv2d, SharedBasisConv2d,
                                   find_basis_users, find_shared_bases)
from reference_checks import (assert_shared_basis_gradients,
                              randomize_batch_norms)

CONFIGS = osp.join(osp.dirname(osp.dirname(__file__)), 'configs')


def config_path(name):
    for folder in ('shared_basis', 'baselines'):
        path = osp.join(CONFIGS, folder, name + '.py')
        if osp.exists(path):
            return path
    raise FileNotFoundError(name)


# (config, paper's parameters in M, decimals shown in the paper)
PAPER_PARAMS = [
    ('resnet34-s48u1_8xb32_in1k', 11.79),
    ('resnet50-shared_8xb32_in1k', 20.51),
    ('resnet50-shared2_8xb32_in1k', 18.26),
    ('resnet50-shared-all_8xb32_in1k', 16.02),
    ('resnet101-shared_8xb32_in1k', 29.47),
    ('mobilenet-v2-shared_8xb32_in1k', 3.24),
    ('mobilenet-v2-shared2_8xb32_in1k', 2.98),
    ('resnet34_8xb32_in1k', 21.80),
    ('resnet50_8xb32_in1k', 25.56),
    ('resnet101_8xb32_in1k', 44.55),
    ('mobilenet-v2_8xb32_in1k', 3.50),
    ('resnet34-s32u1_1xb128_cifar100', 7.73),
    ('resnet56-s16u1_1xb128_cifar10', 0.27),
]


@pytest.mark.parametrize('name,paper', PAPER_PARAMS)
def test_parameters_equal_the_paper_to_its_precision(name, paper):
    cfg = Config.fromfile(config_path(name))
    assert cfg.paper_reference.params == pytest.approx(paper * 1e6)
    params = count_parameters(build_model_from_config(cfg))
    assert round(params / 1e6, 2) == pytest.approx(paper)


@pytest.mark.parametrize('name,paper', [
    ('resnet32-s16u1-double_1xb128_cifar10', 0.24),
    ('resnet56-s16u1-double_1xb128_cifar10', 0.31),
])
def test_truncated_cifar_parameters_within_3_percent(name, paper):
    params = count_parameters(
        build_model_from_config(Config.fromfile(config_path(name))))
    assert abs(params / (paper * 1e6) - 1) < 0.03


# the three-group CIFAR ResNets of He et al.
CIFAR3 = dict(num_stages=3, base_channels=16, strides=(1, 2, 2),
              dilations=(1, 1, 1), out_indices=(2, ), shortcut_type='pad')


def test_double_basis_adds_one_basis_per_group():
    """Learning Deeply Shared Filter Bases: the double-basis ResNet56 adds 16²·9 + 32²·9 + 64²·9."""
    def params(num_bases):
        return count_parameters(
            SharedBasisResNet_CIFAR(
                depth=56, **CIFAR3,
                basis_cfg=dict(shared_rank=16, unique_rank=1,
                               num_bases=num_bases)))
    assert params(2) - params(1) == 16 * 9 * (16**2 + 32**2 + 64**2) // 16


@pytest.mark.parametrize('name,paper_flops', [
    ('resnet34-s48u1_8xb32_in1k', 3.26e9),
    ('resnet50-shared_8xb32_in1k', 4.11e9),
])
def test_flops_within_3_percent_of_table_1(name, paper_flops):
    cfg = Config.fromfile(config_path(name))
    flops = count_flops(build_model_from_config(cfg), (3, 224, 224))
    assert abs(flops / paper_flops - 1) < 0.03


def small_resnet(**kwargs):
    kwargs.setdefault('base_channels', 8)
    return SharedBasisResNet(**kwargs)


VARIANTS = [
    dict(depth=18, basis_cfg=dict(shared_rank=4, unique_rank=1)),
    dict(depth=18, basis_cfg=dict(shared_rank=4, unique_rank=0, num_bases=2)),
    dict(depth=34,
         basis_cfg=dict(shared_rank=6,
                        unique_rank=1,
                        num_bases=2,
                        norm_cfg=None)),
    dict(depth=50, basis_cfg=dict(share='conv2')),
    dict(depth=50, basis_cfg=dict(share='conv1_conv2')),
    dict(depth=50, basis_cfg=dict(share='all'), style='caffe', avg_down=True),
]


@pytest.mark.parametrize('kwargs', VARIANTS)
def test_forward_backward_of_every_variant(kwargs):
    torch.manual_seed(0)
    # zero-initialised residual norms would stop every gradient to the bases
    # at the first step
    model = small_resnet(zero_init_residual=False, **kwargs)
    model.init_weights()
    model.train()
    x = torch.randn(2, 3, 64, 64)
    outs = model(x)
    expansion = 4 if kwargs['depth'] >= 50 else 1
    assert [o.shape for o in outs] == [
        (2, 8 * expansion * 2**i, 16 // 2**i, 16 // 2**i) for i in range(4)
    ]
    sum(o.mean() for o in outs).backward()
    # each basis's gradient: the sum of its users', nonzero
    assert_shared_basis_gradients(
        model, lambda m, x: sum(o.mean() for o in m(x)), [x])


def test_cifar_variants_forward_backward():
    model = SharedBasisResNet_CIFAR(
        depth=20, **CIFAR3,
        basis_cfg=dict(shared_rank=4, unique_rank=1, num_bases=2))
    out, = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 64, 8, 8)
    out.mean().backward()
    four_stage = SharedBasisResNet_CIFAR(depth=18,
                                         base_channels=8,
                                         basis_cfg=dict(shared_rank=4))
    assert four_stage(torch.randn(1, 3, 32, 32))[-1].shape == (1, 64, 4, 4)


@pytest.mark.parametrize('share', ['expand', 'expand_project'])
def test_mobilenet_v2_shared(share):
    model = SharedBasisMobileNetV2(share=share, widen_factor=0.5,
                                   out_indices=(7, ))
    bases = find_shared_bases(model)
    # Stages of 32, 64, 96 and 160 channels repeat their block >= 2 times.
    assert len(bases) == 4 * (2 if share == 'expand_project' else 1)
    users = find_basis_users(model)
    assert sorted(len(u) for u in users.values())[:2] == [2, 2]
    x = torch.randn(2, 3, 64, 64)
    out, = model(x)
    out.mean().backward()
    assert_shared_basis_gradients(model, lambda m, x: m(x)[0].mean(), [x])


def test_each_group_shares_one_parameter_per_basis():
    model = small_resnet(depth=34,
                         basis_cfg=dict(shared_rank=4,
                                        unique_rank=1,
                                        num_bases=2))
    bases = find_shared_bases(model)
    assert len(bases) == 4 * 2
    for stage, num_blocks in enumerate((3, 4, 6, 3), 1):
        layer = getattr(model, f'layer{stage}')
        assert not isinstance(layer[0].conv1, SharedBasisConv2d)
        first = layer[1].conv1.shared_basis
        second = layer[1].conv2.shared_basis
        assert first is not second
        assert first is layer.shared_basis_conv1
        assert second is layer.shared_basis_conv2
        for block in list(layer)[1:]:
            assert block.conv1.shared_basis is first
            assert block.conv2.shared_basis is second
        users = find_basis_users(model)
        assert sum(len(u) for u in users.values()) == 2 * (3 + 4 + 6 + 3 - 4)
    single = small_resnet(depth=18, basis_cfg=dict(shared_rank=4, num_bases=1))
    for layer in (single.layer1, single.layer4):
        assert layer[1].conv1.shared_basis is layer[1].conv2.shared_basis
        assert layer[1].conv1.shared_basis is layer.shared_basis
    bottleneck = small_resnet(depth=50, basis_cfg=dict(share='all'))
    assert len(find_shared_bases(bottleneck)) == 4 * 3
    for block in list(bottleneck.layer3)[2:]:
        for name in ('conv1', 'conv2', 'conv3'):
            assert getattr(block, name).shared_basis is getattr(
                bottleneck.layer3[1], name).shared_basis
        assert block.norm2 is not bottleneck.layer3[1].norm2


def test_sharing_survives_checkpoint_and_pretrained_init(tmp_path):
    torch.manual_seed(0)
    trained = small_resnet(depth=34,
                           basis_cfg=dict(shared_rank=4, num_bases=2))
    for p in trained.parameters():
        p.data.normal_()
    path = str(tmp_path / 'backbone.pth')
    save_checkpoint({'state_dict': trained.state_dict()}, path)
    model = small_resnet(depth=34,
                         basis_cfg=dict(shared_rank=4, num_bases=2),
                         init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    for name, value in trained.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], value)
    layer = model.layer2
    assert layer[1].conv1.shared_basis is layer[3].conv1.shared_basis
    assert layer[1].conv1.shared_basis is layer.shared_basis_conv1


def test_frozen_stages_freeze_their_bases():
    model = small_resnet(depth=50,
                         basis_cfg=dict(share='conv1_conv2'),
                         frozen_stages=2,
                         norm_eval=False)
    model.train()
    for stage in (1, 2):
        layer = getattr(model, f'layer{stage}')
        assert all(not p.requires_grad for p in layer.parameters())
        assert all(not m.training for m in layer.modules()
                   if isinstance(m, nn.BatchNorm2d))
    for basis in find_shared_bases(model.layer3).values():
        assert basis.requires_grad
    assert model.layer3[1].norm1.training


def test_plugins_and_out_indices():
    model = small_resnet(
        depth=50, out_indices=(1, 3),
        plugins=[dict(cfg=dict(type='ContextBlock', ratio=1. / 4),
                      stages=(False, True, True, True),
                      position='after_conv3')])
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [64, 256]
    assert hasattr(model.layer2[1], 'context_block')


@pytest.mark.parametrize(
    'kwargs,match',
    [
        (dict(depth=42), r'depth must be one of \(18, 34, 50, 101, 152\), '
         r'got depth=42'),
        (dict(depth=50, basis_cfg=dict(share='conv3')),
         r"SharedBasisResNet \(depth=50\): basis_cfg.share must be one of "
         r"\('all', 'conv1_conv2', 'conv2', 'conv2_conv3'\), got "
         r"basis_cfg.share='conv3'"),
        (dict(depth=34),
         r'SharedBasisResNet \(depth=34\): basis_cfg.shared_rank '
         r'is required'),
        (dict(depth=34, basis_cfg=dict(shared_rank=0)),
         'basis_cfg.shared_rank must be a positive integer, got '
         'basis_cfg.shared_rank=0'),
        (dict(depth=34, basis_cfg=dict(
            shared_rank=4, unique_rank=-1)), 'basis_cfg.unique_rank=-1'),
        (dict(depth=34, basis_cfg=dict(shared_rank=4,
                                       num_bases=3)), 'basis_cfg.num_bases=3'),
        (dict(depth=50, out_indices=(0, 4)), r'out_indices=\(0, 4\) out of '
         r'range; expected a sequence of stage indices in \[-4, 4\) for '
         r'num_stages=4'),
        (dict(depth=50, frozen_stages=5), r'frozen_stages=5 out of range'),
        # arguments of the other block family
        (dict(depth=18, basis_cfg=dict(shared_rank=4, share='conv2')),
         r"SharedBasisResNet \(depth=18\): basis_cfg.share='conv2' given, "
         r'which the blocks \(SharedBasisBasicBlock\) do not take; expected '
         r"basis_cfg keys among \['norm_cfg', 'num_bases', 'shared_rank', "
         r"'unique_rank'\]"),
        (dict(depth=50, basis_cfg=dict(shared_rank=4, num_bases=2)),
         r'basis_cfg.num_bases=2, basis_cfg.shared_rank=4 given, which the '
         r'blocks \(SharedBasisBottleneck\) do not take'),
        (dict(depth=101, basis_cfg=dict(norm_cfg=None)),
         r'basis_cfg.norm_cfg=None given, which the blocks '
         r'\(SharedBasisBottleneck\)'),
        (dict(depth=18, basis_cfg=dict(shared_rank=600)),
         r'basis_cfg.shared_rank \+ basis_cfg.unique_rank=601 elements cannot '
         'fit a 3 x 3 basis over 64 channels'),
        (dict(depth=50, shortcut_type='identity'), "shortcut_type='identity'"),
    ])
def test_bad_configuration(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SharedBasisResNet(**kwargs)


def test_cifar_stem_refuses_deep_stem():
    with pytest.raises(ValueError, match='deep_stem=True is not supported'):
        SharedBasisResNet_CIFAR(depth=20, **CIFAR3,
                                basis_cfg=dict(shared_rank=4),
                                deep_stem=True)


def test_bad_mobilenet_share_mode():
    with pytest.raises(ValueError,
                       match=r"share must be one of "
                       r"\('expand', 'expand_project'\), got share='all'"):
        SharedBasisMobileNetV2(share='all')


def test_fused_backbones_match_unfused():
    from sharedbasis_mm import fuse_shared_basis
    torch.manual_seed(0)
    for model in (small_resnet(depth=34,
                               basis_cfg=dict(shared_rank=4, num_bases=2)),
                  small_resnet(depth=50, basis_cfg=dict(share='all')),
                  SharedBasisMobileNetV2(widen_factor=0.5)):
        randomize_batch_norms(model).eval()
        x = torch.randn(2, 3, 64, 64)
        expected = model(x)
        fuse_shared_basis(model)
        assert not find_shared_bases(model)
        assert not any(
            isinstance(m, (BasisConv2d, SharedBasisConv2d))
            for m in model.modules())
        for out, ref in zip(model(x), expected):
            assert (out - ref).norm() / ref.norm() < 1e-4


def test_res_layer_with_the_downsample_last_as_mmdet():
    """downsample_first=False: the blocks keep the input width and the last
    one downsamples, as mmdet's ResLayer builds them."""
    from mmdet.models.backbones.resnet import BasicBlock
    from mmdet.models.layers import ResLayer

    from sharedbasis_mm.backbones.shared_basis_resnet import (
        SharedBasisBasicBlock, SharedBasisResLayer)
    torch.manual_seed(0)
    theirs = ResLayer(BasicBlock, 16, 32, 3, stride=2,
                      downsample_first=False).eval()
    plain = SharedBasisResLayer(SharedBasisBasicBlock, 16, 32, 3, stride=2,
                                downsample_first=False).eval()
    assert {k: v.shape for k, v in plain.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()}
    plain.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 16, 8, 8)
    torch.testing.assert_close(plain(x), theirs(x))
    sharing = SharedBasisResLayer(
        SharedBasisBasicBlock, 16, 32, 3, stride=2, downsample_first=False,
        basis_cfg=dict(shared_rank=8, unique_rank=1)).eval()
    assert sharing.shared_basis.shape == (8, 16, 3, 3)
    assert [block.downsample is not None for block in sharing] == [
        False, False, True]
    assert sharing[2].conv1.stride == (2, 2)
    assert not isinstance(sharing[2].conv1, SharedBasisConv2d)
    assert all(block.conv2.shared_basis is sharing.shared_basis
               for block in list(sharing)[:2])
    assert sharing(x).shape == (2, 32, 4, 4)


def test_basis_norm_groups_that_do_not_divide_the_rank_are_named():
    with pytest.raises(
            ValueError,
            match=r'SharedBasisBasicBlock: basis_cfg.shared_rank \+ '
            r'basis_cfg.unique_rank=9 basis responses cannot be split into '
            r"the num_groups=2 groups of the norm after the basis \(\{'type': "
            r"'GN', 'num_groups': 2"):
        small_resnet(depth=18, norm_cfg=dict(type='GN', num_groups=2),
                     basis_cfg=dict(shared_rank=8, unique_rank=1))
    # ranks the groups divide build
    model = small_resnet(depth=18, norm_cfg=dict(type='GN', num_groups=2),
                         basis_cfg=dict(shared_rank=8, unique_rank=2))
    assert model.layer1[1].conv1.norm.num_groups == 2
