import copy

import pytest
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.models.backbones import ResNet
from mmengine.config import Config
from mmengine.runner import load_checkpoint, save_checkpoint
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval

import sharedbasis_mm  # noqa: F401
from sharedbasis_mm.analysis import build_model_from_config
from sharedbasis_mm.backbones import (SharedBasisDenseNet_CIFAR,
                                      SharedBasisMobileNetV2,
                                      SharedBasisResNet,
                                      SharedBasisResNet_CIFAR,
                                      SharedBasisResNeXt)
from sharedbasis_mm.layers import (BasisConv2d, SharedBasisConv2d,
                                   find_shared_bases, fuse_model)
from tool_loading import load_tool
from tool_utils.deployment import (export_onnx, flatten_tensors,
                                   max_abs_difference, run_onnx)

# Every shared-basis backbone, tiny: (class, arguments).
BACKBONES = {
    'resnet18-s4u1': (SharedBasisResNet,
                      dict(depth=18,
                           base_channels=8,
                           basis_cfg=dict(shared_rank=4))),
    'resnet34-s4u1-double-nonorm': (SharedBasisResNet,
                                    dict(depth=34,
                                         base_channels=8,
                                         basis_cfg=dict(shared_rank=4,
                                                        num_bases=2,
                                                        norm_cfg=None))),
    'resnet50-shared': (SharedBasisResNet,
                        dict(depth=50,
                             base_channels=8,
                             basis_cfg=dict(share='conv2'))),
    'resnet50-shared2': (SharedBasisResNet,
                         dict(depth=50,
                              base_channels=8,
                              basis_cfg=dict(share='conv1_conv2'))),
    'resnet50-shared-all': (SharedBasisResNet,
                            dict(depth=50,
                                 base_channels=8,
                                 basis_cfg=dict(share='all'),
                                 style='caffe',
                                 avg_down=True)),
    'resnet20-cifar-pad': (SharedBasisResNet_CIFAR,
                           dict(depth=20, num_stages=3, base_channels=16,
                                strides=(1, 2, 2), dilations=(1, 1, 1),
                                out_indices=(2, ), shortcut_type='pad',
                                basis_cfg=dict(shared_rank=4, num_bases=2))),
    'mobilenet-v2-shared':
    (SharedBasisMobileNetV2, dict(widen_factor=0.25, out_indices=(4, 7))),
    'mobilenet-v2-shared2':
    (SharedBasisMobileNetV2, dict(share='expand_project', widen_factor=0.25)),
    'resnext50-s8u4': (SharedBasisResNeXt,
                       dict(depth=50,
                            groups=4,
                            base_width=4,
                            base_channels=16,
                            shared_rank=8,
                            unique_rank=4,
                            shared_groups=4)),
}
# And those whose BatchNorms do not all follow a convolution (DenseNet's
# pre-activation layers): fused, they keep the norms that fold into no
# convolution.
PRE_ACTIVATION_BACKBONES = {
    'densenet-s3u1-cifar': (SharedBasisDenseNet_CIFAR,
                            dict(arch=dict(growth_rate=4,
                                           depths=[2, 2],
                                           init_channels=8),
                                 shared_rank=3,
                                 unique_rank=1,
                                 transition_act=False)),
}

TINY_CLASSIFIER = """
custom_imports = dict(imports=['sharedbasis_mm'], allow_failed_imports=False)
default_scope = 'mmpretrain'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='{backbone}', depth=18, base_channels=8,
                  {sharing}out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=64))
"""


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and BatchNorm statistics, as after training."""
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 2)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.1)
    model.eval()
    return model


def build(name: str, **kwargs) -> nn.Module:
    cls, args = {**BACKBONES, **PRE_ACTIVATION_BACKBONES}[name]
    return cls(**args, **kwargs)


def outputs(model: nn.Module, x: torch.Tensor):
    model.eval()
    with torch.no_grad():
        return flatten_tensors(model(x))


@pytest.mark.parametrize('name', list(BACKBONES))
def test_fused_and_deployed_backbones_match_unfused(name):
    model = randomize(build(name))
    x = torch.randn(2, 3, 32, 32)
    expected = outputs(model, x)
    assert max(e.abs().max() for e in expected) > 0.1
    fused = fuse_model(copy.deepcopy(model))
    assert not any(
        isinstance(m, (BasisConv2d, SharedBasisConv2d, _BatchNorm))
        for m in fused.modules())
    assert not find_shared_bases(fused)
    assert not [k for k in fused.state_dict() if 'basis' in k]
    # Every BatchNorm folded into the conv before it, as a bias: one conv
    # with a bias per norm outside the shared-basis convs (whose basis norms
    # fold into the same conv), the stem's as torch folds it.
    basis_convs = [n for n, m in model.named_modules()
                   if isinstance(m, (BasisConv2d, SharedBasisConv2d))]
    block_norms = [n for n, m in model.named_modules()
                   if isinstance(m, _BatchNorm)
                   and not any(n.startswith(b + '.') for b in basis_convs)]
    convs = [m for m in fused.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == len(block_norms)
    assert all(m.bias is not None for m in convs)
    if isinstance(model.conv1, ConvModule):
        stem, fused_stem = (model.conv1.conv, model.conv1.bn), fused.conv1.conv
    else:
        stem, fused_stem = (model.conv1, model.norm1), fused.conv1
    reference = fuse_conv_bn_eval(*stem)
    torch.testing.assert_close(fused_stem.weight, reference.weight)
    torch.testing.assert_close(fused_stem.bias, reference.bias)
    assert max_abs_difference(outputs(fused, x), expected) < 1e-4
    # deploy=True builds the fused structure, into which the fused weights
    # load and compute the same.
    deployed = build(name, deploy=True)
    assert deployed.deploy
    assert {k: v.shape for k, v in deployed.state_dict().items()} == {
        k: v.shape for k, v in fused.state_dict().items()}
    deployed.load_state_dict(fused.state_dict(), strict=True)
    assert max_abs_difference(outputs(deployed, x), outputs(fused, x)) == 0


@pytest.mark.parametrize('name',
                         list(BACKBONES) + list(PRE_ACTIVATION_BACKBONES))
def test_switch_to_deploy_equals_eval_mode(name):
    """As mmpretrain's RepVGG: switch_to_deploy() fuses the backbone in
    place, and it computes its eval-mode outputs; deploy=True builds the
    same structure."""
    model = randomize(build(name))
    assert all(m.running_var.std() > 0.1 for m in model.modules()
               if isinstance(m, _BatchNorm))
    x = torch.randn(2, 3, 32, 32)
    expected = outputs(model, x)
    assert not model.deploy
    model.switch_to_deploy()
    assert model.deploy
    assert not any(
        isinstance(m, (BasisConv2d, SharedBasisConv2d))
        for m in model.modules())
    assert max_abs_difference(outputs(model, x), expected) < 1e-5
    state = copy.deepcopy(model.state_dict())
    model.switch_to_deploy()  # a second call changes nothing
    assert list(model.state_dict()) == list(state)
    deployed = build(name, deploy=True)
    deployed.load_state_dict(state, strict=True)
    assert max_abs_difference(outputs(deployed, x), expected) < 1e-5


def test_fused_shared_basis_resnet_is_a_plain_resnet_graph():
    fused = fuse_model(build('resnet34-s4u1-double-nonorm'))
    plain = ResNet(depth=34, base_channels=8)
    assert [m.weight.shape for m in fused.modules()
            if isinstance(m, nn.Conv2d)] == [
                m.weight.shape for m in plain.modules()
                if isinstance(m, nn.Conv2d)]


def test_fuse_model_refuses_a_norm_that_does_not_follow_its_conv():
    model = nn.Sequential(
        ConvModule(4, 4, 3, norm_cfg=dict(type='BN'),
                   order=('conv', 'act', 'norm')))
    with pytest.raises(ValueError, match=r"order=\('conv', 'act', 'norm'\)"):
        fuse_model(model)


def write_tiny_classifier(tmp_path, backbone: str, sharing: str):
    config = tmp_path / f'tiny-{backbone.lower()}.py'
    config.write_text(
        TINY_CLASSIFIER.format(backbone=backbone, sharing=sharing))
    model = randomize(build_model_from_config(Config.fromfile(str(config))))
    checkpoint = str(tmp_path / 'trained.pth')
    save_checkpoint({'state_dict': model.state_dict()}, checkpoint)
    return str(config), checkpoint, model


def test_fuse_tool_writes_a_deploy_config_and_checkpoint(tmp_path, capsys):
    config, checkpoint, model = write_tiny_classifier(
        tmp_path, 'SharedBasisResNet',
        'basis_cfg=dict(shared_rank=4, num_bases=2), ')
    out_dir = tmp_path / 'fused'
    load_tool('fuse_model').main([
        config, checkpoint, '--out-dir',
        str(out_dir), '--input-shape', '2', '3', '32', '32'
    ])
    assert 'fused vs original: max |difference|' in capsys.readouterr().out
    deploy_cfg = Config.fromfile(
        str(out_dir / 'tiny-sharedbasisresnet_deploy.py'))
    assert deploy_cfg.model.backbone.deploy is True
    assert deploy_cfg.load_from == str(
        out_dir / 'tiny-sharedbasisresnet_fused.pth')
    deployed = build_model_from_config(deploy_cfg)
    load_checkpoint(deployed, deploy_cfg.load_from, strict=True)
    assert not any(isinstance(m, (SharedBasisConv2d, _BatchNorm))
                   for m in deployed.backbone.modules())
    x = torch.randn(3, 3, 32, 32)
    deployed.eval()
    with torch.no_grad():
        logits = deployed(x, mode='tensor')
        expected = model(x, mode='tensor')
    assert max_abs_difference([logits], [expected]) < 1e-4


def test_fuse_tool_refuses_a_backbone_without_deploy(tmp_path):
    config, checkpoint, _ = write_tiny_classifier(tmp_path, 'mmdet.ResNet',
                                                  '')
    with pytest.raises(SystemExit, match='ResNet has no deploy argument'):
        load_tool('fuse_model').main(
            [config, checkpoint, '--out-dir',
             str(tmp_path / 'fused')])


def test_onnx_of_fused_backbone_reproduces_pytorch(tmp_path):
    pytest.importorskip(
        'onnxruntime',
        reason='onnxruntime cannot be imported: the ONNX model cannot be run')
    backbone = fuse_model(
        randomize(build('resnet18-s4u1', out_indices=(2, 3))))
    x = torch.randn(2, 3, 48, 48)
    path = str(tmp_path / 'backbone.onnx')
    assert export_onnx(backbone, x, path) == ['output0', 'output1']
    onnx_outputs = run_onnx(path, x)
    torch_outputs = outputs(backbone, x)
    assert [o.shape for o in onnx_outputs] == [(2, 32, 3, 3), (2, 64, 2, 2)]
    assert max_abs_difference(onnx_outputs, torch_outputs) < 1e-4
