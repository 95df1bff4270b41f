"""Checkpoints of the authors' code of Learning Deeply Shared Filter Bases,
converted into the models of our configs, give the logits of their code.

The references are the fixtures of tests/net_rl2_fixtures.py: their
models' state-dict layouts and the logits their code computes with weights
made by a seeded rule.
"""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from torch.nn.modules.batchnorm import _BatchNorm

import sharedbasis_mm  # noqa: F401
from net_rl2_fixtures import (fixture_input, fixture_logits,
                              fixture_state_dict, manifest)
from reference_checks import randomize_batch_norms
from sharedbasis_mm.analysis import build_model_from_config
from sharedbasis_mm.converters import (NetRL2ConversionError, convert_net_rl2,
                                       convert_net_rl2_checkpoint,
                                       load_net_rl2_checkpoint)
from sharedbasis_mm.layers import BasisConv2d

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = osp.join(ROOT, 'configs')
TOOL = osp.join(ROOT, 'tools', 'model_converters', 'net_rl2_to_mmpretrain.py')

# (fixture, config of the model it converts into, their conv biases that fold
# into the following BatchNorm)
NET_RL2_MODELS = [
    ('ilsvrc_resnet34_double_s48u1', 'shared_basis/resnet34-s48u1_8xb32_in1k',
     ()),
    ('ilsvrc_resnet50_shared', 'shared_basis/resnet50-shared_8xb32_in1k', ()),
    ('ilsvrc_resnet50_shared2', 'shared_basis/resnet50-shared2_8xb32_in1k',
     ()),
    ('ilsvrc_resnet101_shared', 'shared_basis/resnet101-shared_8xb32_in1k',
     ()),
    ('ilsvrc_mobilenetv2_shared',
     'shared_basis/mobilenet-v2-shared_8xb32_in1k', ('pre.0.bias',
                                                     'conv1.0.bias')),
    ('ilsvrc_mobilenetv2_shared2',
     'shared_basis/mobilenet-v2-shared2_8xb32_in1k', ('pre.0.bias',
                                                      'conv1.0.bias')),
    ('cifar100_resnet34_s32u1', 'shared_basis/resnet34-s32u1_1xb128_cifar100',
     ()),
    ('cifar100_resnet34_s16u1',
     'orthogonality/resnet34-s16u1-bn-orthoreg_1xb128_cifar100', ()),
    ('cifar10_resnet56_s16u1', 'shared_basis/resnet56-s16u1_1xb128_cifar10',
     ()),
    ('cifar10_resnet56_double_s16u1',
     'shared_basis/resnet56-s16u1-double_1xb128_cifar10', ()),
    ('cifar10_resnet32_double_s16u1',
     'shared_basis/resnet32-s16u1-double_1xb128_cifar10', ()),
]


def config_path(name):
    return osp.join(CONFIGS, f'{name}.py')


def build(config):
    return build_model_from_config(Config.fromfile(config_path(config)))


def relative_error(output, reference):
    return ((output - reference).abs().max() / reference.abs().max()).item()


def train_norms(model):
    """Train mode with batch statistics in every norm, whatever the config's
    ``norm_eval`` (mmdet's ResNet freezes them by default)."""
    model.train()
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.train()


def assert_their_logits(model, name):
    inputs = fixture_input(name)
    logits, logits_train = fixture_logits(name)
    model.eval()
    with torch.no_grad():
        assert relative_error(model(inputs), logits) < 1e-4
        train_norms(model)
        assert relative_error(model(inputs), logits_train) < 1e-4


@pytest.mark.parametrize('name,config,folded',
                         NET_RL2_MODELS,
                         ids=[m[0] for m in NET_RL2_MODELS])
def test_converted_model_gives_their_logits(name, config, folded):
    model = build(config)
    state_dict = convert_net_rl2(fixture_state_dict(name), model, config)
    model.load_state_dict(state_dict, strict=True)
    assert_their_logits(model, name)
    # Their parameter count, less the biases folded into BatchNorms.
    their_params = sum(
        torch.Size(e['shape']).numel() for e in manifest(name)
        if 'alias_of' not in e and not e['key'].endswith(
            ('running_mean', 'running_var', 'num_batches_tracked')))
    folded_params = sum(
        torch.Size(e['shape']).numel() for e in manifest(name)
        if e['key'] in folded)
    ours = sum(p.numel() for p in model.parameters())
    assert ours == their_params - folded_params


def write_their_checkpoint(path, name):
    """Their training script's file, saved from DataParallel."""
    torch.save(
        dict(net_state_dict={
            f'module.{key}': value
            for key, value in fixture_state_dict(name).items()
        },
             acc=76.05,
             epoch=149), path)


@pytest.fixture(scope='module')
def shared2():
    """ResNet50-Shared‡ converted by the package function."""
    config = 'shared_basis/resnet50-shared2_8xb32_in1k'
    model = build(config)
    model.load_state_dict(
        convert_net_rl2(fixture_state_dict('ilsvrc_resnet50_shared2'), model,
                        config))
    return model


def test_tool_writes_the_backbone_the_detection_config_loads(
        tmp_path, shared2):
    src = str(tmp_path / 'resnet50_shared2.pth')
    write_their_checkpoint(src, 'ilsvrc_resnet50_shared2')
    detector = Config.fromfile(
        config_path(
            'detection/shared_basis/faster-rcnn_r50-shared2_fpn_4xb2-1x_coco'))
    # The path the detection config loads, under a temporary root.
    dst = str(tmp_path / detector.model.backbone.init_cfg.checkpoint)
    config = 'shared_basis/resnet50-shared2_8xb32_in1k'
    assert osp.basename(dst) == osp.basename(config) + '.pth'
    result = subprocess.run([
        sys.executable, TOOL, src, dst, '--config',
        config_path(config), '--backbone'
    ],
                            cwd=ROOT,
                            capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr

    written = torch.load(dst, weights_only=True)['state_dict']
    assert written.keys() == shared2.backbone.state_dict().keys()
    for key, value in shared2.backbone.state_dict().items():
        assert torch.equal(written[key], value), key
    backbone_cfg = detector.model.backbone.copy()
    backbone_cfg.pop('init_cfg')
    backbone = MODELS.build(backbone_cfg)
    backbone.load_state_dict(written, strict=True)


@pytest.mark.parametrize('detector', [
    f'{family}_{backbone}_fpn_4xb2-1x_coco'
    for family in ('faster-rcnn', 'mask-rcnn', 'retinanet')
    for backbone in ('r50-shared', 'r50-shared2', 'r101-shared')
])
def test_detection_configs_load_the_converted_backbone_by_name(detector):
    """``--backbone`` with DST ``work_dirs/backbones/<config name>.pth``
    writes what the detection config loads, for every shared-basis one."""
    cfg = Config.fromfile(config_path(f'detection/shared_basis/{detector}'))
    checkpoint = cfg.model.backbone.init_cfg.checkpoint
    assert osp.dirname(checkpoint) == 'work_dirs/backbones'
    classification = osp.join(CONFIGS, 'shared_basis',
                              osp.basename(checkpoint)[:-len('.pth')] + '.py')
    backbone = Config.fromfile(classification).model.backbone
    for key in ('type', 'depth', 'basis_cfg'):
        assert backbone[key] == cfg.model.backbone[key], key


def test_classifier_checkpoint_loads_with_mmengine(tmp_path):
    name = 'cifar10_resnet32_double_s16u1'
    config = 'shared_basis/resnet32-s16u1-double_1xb128_cifar10'
    src, dst = str(tmp_path / 'theirs.pth'), str(tmp_path / 'ours.pth')
    write_their_checkpoint(src, name)
    convert_net_rl2_checkpoint(src, dst, config_path(config))
    model = build(config)
    load_checkpoint(model, dst, strict=True)
    assert_their_logits(model, name)


@pytest.mark.parametrize(
    'name,config,message',
    [
        # One basis per group given to a model of two.
        ('cifar10_resnet56_s16u1',
         'shared_basis/resnet56-s16u1-double_1xb128_cifar10',
         r"no key 'shared_basis_1_1.weight', which fills "
         r"'backbone.layer1.+ of shape \(16, 16, 3, 3\)"),
        # 32 shared elements given to a model of 16.
        ('cifar100_resnet34_s32u1',
         'orthogonality/resnet34-s16u1-bn-orthoreg_1xb128_cifar100',
         r"'shared_basis_1.weight' of shape \(32, 64, 3, 3\) do not fit "
         r"'backbone.layer1.+ of shape \(16, 64, 3, 3\)"),
        # ResNet50-Shared given to ResNet50-Shared‡.
        ('ilsvrc_resnet50_shared', 'shared_basis/resnet50-shared2_8xb32_in1k',
         r"no key 'shared_basis_1_1.weight'"),
        # ResNet56 given to ResNet32: blocks left over.
        ('cifar10_resnet56_double_s16u1',
         'shared_basis/resnet32-s16u1-double_1xb128_cifar10',
         r"key 'layer1.5.shared_basis_1.weight' of shape \(16, 16, 3, 3\) "
         r'has no place'),
    ])
def test_a_checkpoint_of_another_model_is_refused_naming_the_key(
        name, config, message):
    with pytest.raises(NetRL2ConversionError, match=message):
        convert_net_rl2(fixture_state_dict(name), build(config), config)


def test_copies_of_a_shared_basis_must_agree():
    name = 'cifar10_resnet32_double_s16u1'
    config = 'shared_basis/resnet32-s16u1-double_1xb128_cifar10'
    state_dict = fixture_state_dict(name)
    state_dict['layer2.3.shared_basis_2.weight'] = (
        state_dict['layer2.3.shared_basis_2.weight'] + 1e-3)
    with pytest.raises(NetRL2ConversionError,
                       match="'layer2.3.shared_basis_2.weight' and "
                       "'shared_basis_2_2.weight' hold one shared basis"):
        convert_net_rl2(state_dict, build(config), config)


def test_a_file_of_other_code_says_what_was_expected(tmp_path):
    mmpretrain = str(tmp_path / 'mmpretrain.pth')
    torch.save(
        dict(meta={}, state_dict={'backbone.conv1.weight': torch.zeros(1)}),
        mmpretrain)
    with pytest.raises(NetRL2ConversionError,
                       match='expected a checkpoint of the authors\' code .+'
                       'net_state_dict.+OpenMMLab checkpoint'):
        load_net_rl2_checkpoint(mmpretrain)
    bare = str(tmp_path / 'bare.pth')
    torch.save({'backbone.conv1.weight': torch.zeros(1)}, bare)
    with pytest.raises(NetRL2ConversionError, match='found OpenMMLab keys'):
        load_net_rl2_checkpoint(bare)
    text = tmp_path / 'notes.txt'
    text.write_text('not a checkpoint')
    with pytest.raises(NetRL2ConversionError, match='cannot be read'):
        load_net_rl2_checkpoint(str(text))


def test_their_file_layouts_load_alike(tmp_path):
    name = 'cifar10_resnet32_double_s16u1'
    state_dict = fixture_state_dict(name)
    plain, wrapped = str(tmp_path / 'plain.pth'), str(tmp_path / 'dp.pth')
    torch.save(state_dict, plain)
    write_their_checkpoint(wrapped, name)
    for path in (plain, wrapped):
        loaded = load_net_rl2_checkpoint(path)
        assert list(loaded) == list(state_dict)
        assert all(torch.equal(loaded[k], state_dict[k]) for k in loaded)


def test_converted_shared2_model_shares_conv2_and_conv3(shared2):
    """ResNet50-Shared‡ as the authors' code builds it: 18.26M parameters,
    the 3 x 3 and the last 1 x 1 convolution of the blocks after the first
    of each group on the group's two bases, which hold their weights."""
    assert round(sum(p.numel() for p in shared2.parameters()) / 1e6,
                 2) == 18.26
    theirs = fixture_state_dict('ilsvrc_resnet50_shared2')
    for index, layer_name in enumerate(shared2.backbone.res_layers, 1):
        first, *sharing = getattr(shared2.backbone, layer_name)
        assert not any(
            isinstance(getattr(first, conv), BasisConv2d)
            for conv in ('conv1', 'conv2', 'conv3'))
        for block in sharing:
            assert not isinstance(block.conv1, BasisConv2d)
            assert block.conv2.weight is sharing[0].conv2.weight
            assert block.conv3.weight is sharing[0].conv3.weight
        assert torch.equal(sharing[0].conv2.weight,
                           theirs[f'shared_basis_{index}_1.weight'])
        assert torch.equal(sharing[0].conv3.weight,
                           theirs[f'shared_basis_{index}_2.weight'])


def test_authors_mobilenet_v2_structure_fuses_for_deployment():
    """The options that build their MobileNetV2 keep the deploy path exact."""
    from sharedbasis_mm.backbones import SharedBasisMobileNetV2
    from sharedbasis_mm.layers import fuse_model
    torch.manual_seed(0)
    model = SharedBasisMobileNetV2(share='expand_project',
                                   widen_factor=0.5,
                                   always_expand=True,
                                   block_act_cfg=dict(type='ReLU'),
                                   eca=True)
    randomize_batch_norms(model).eval()
    inputs = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, = model(inputs)
        output, = fuse_model(model)(inputs)
    assert relative_error(output, expected) < 1e-4


def test_eca_kernel_must_be_odd():
    from sharedbasis_mm.attention import ECALayer
    with pytest.raises(ValueError, match='kernel_size=2'):
        ECALayer(kernel_size=2)
