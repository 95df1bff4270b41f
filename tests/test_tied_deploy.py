"""The deploy structure of the tied backbones and plugins (Tied Block
Convolution): every norm folded, each TBC a group convolution, the tied
3 x 3 parts of one block number merged; equal to the trained structure in
eval mode."""
import copy

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.runner import load_checkpoint, save_checkpoint
from test_deploy import outputs, randomize
from torch.nn.modules.batchnorm import _BatchNorm

from sharedbasis_mm.analysis import build_model_from_config
from sharedbasis_mm.attention import TiedGCB, TiedSE
from sharedbasis_mm.backbones import TiedResNet, TiedResNeXt, TiedSEResNet
from sharedbasis_mm.backbones.tied_resnet import (MergedSplitConv,
                                                  TiedSplitConv)
from sharedbasis_mm.layers import TiedBlockConv2d, TiedLinear, fuse_model
from tool_loading import load_tool
from tool_utils.deployment import max_abs_difference

GCB = dict(
    cfg=dict(type='TiedGCB', ratio=1 / 4, blocks=2,
             fusion_types=('channel_add', 'channel_mul')),
    stages=(False, True, True, True),
    position='after_conv3')

# Every tied backbone, tiny: (class, arguments, merged 3 x 3 convolutions
# of each TiedSplitConv: one per run of equal block numbers).
TIED_BACKBONES = {
    'tied-resnet50': (TiedResNet, dict(depth=50, base_channels=16,
                                       base_width=8), 4),
    'tied-resnet50-s': (TiedResNet,
                        dict(depth=50, base_channels=16, base_width=4,
                             split_blocks=(1, 2, 2, 2)), 2),
    'tied-resnet50-cat-caffe': (TiedResNet,
                                dict(depth=50, base_channels=16, base_width=4,
                                     split_blocks=(2, 2, 2, 2), mixer='cat',
                                     style='caffe', avg_down=True), 1),
    'tied-resnext50': (TiedResNeXt,
                       dict(depth=50, base_channels=16, base_width=16,
                            groups=2, split_blocks=(1, 2, 4, 4)), 3),
    'tied-seresnet50': (TiedSEResNet,
                        dict(depth=50, base_channels=16, base_width=8,
                             se_blocks=2, se_ratio=4), 4),
    'tied-resnet50-gcb': (TiedResNet,
                          dict(depth=50, base_channels=16, base_width=8,
                               plugins=[GCB]), 4),
}

TIED_CLASSIFIER = """
custom_imports = dict(imports=['sharedbasis_mm'], allow_failed_imports=False)
default_scope = 'mmpretrain'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='TiedResNet', depth=50, base_channels=16,
                  base_width=4, split_blocks=(1, 2, 2, 2), out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=512))
"""


def randomize_tied(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BatchNorm statistics and affine parameters (of both signs),
    LayerNorms and the TiedGCB transforms (which start at zero)."""
    randomize(model, seed)
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.weight.data.uniform_(-1.5, 1.5)
        elif isinstance(module, nn.LayerNorm):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.1)
        elif isinstance(module, TiedBlockConv2d):
            module.conv.weight.data.normal_(0, 0.2)
            if module.conv.bias is not None:
                module.conv.bias.data.normal_(0, 0.1)
    return model.eval()


def build(name: str, **kwargs) -> nn.Module:
    cls, args, _ = TIED_BACKBONES[name]
    return cls(**args, **kwargs)


def tied_layers(model: nn.Module) -> list:
    return [
        m for m in model.modules()
        if isinstance(m, (TiedBlockConv2d, TiedLinear, TiedSplitConv,
                          _BatchNorm))
    ]


@pytest.mark.parametrize('name', list(TIED_BACKBONES))
def test_deployed_tied_backbones_equal_the_trained_ones(name):
    model = randomize_tied(build(name))
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert torch.cat([m.running_var for m in norms]).std() > 0.1
    assert (torch.cat([m.weight for m in norms]) < 0).float().mean() > 0.2
    x = torch.randn(2, 3, 64, 64)
    expected = outputs(model, x)
    assert max(e.abs().max() for e in expected) > 0.1
    fused = copy.deepcopy(model)
    fused.switch_to_deploy()
    assert fused.deploy and not tied_layers(fused)
    merged = [m for m in fused.modules() if isinstance(m, MergedSplitConv)]
    assert len(merged) == 16
    assert {len(m.convs) for m in merged} == {TIED_BACKBONES[name][2]}
    # every norm folded: each convolution has a bias, none of them is tied
    assert all(m.bias is not None
               for m in fused.modules() if isinstance(m, nn.Conv2d))
    assert max_abs_difference(outputs(fused, x), expected) < 1e-4
    state = copy.deepcopy(fused.state_dict())
    fused.switch_to_deploy()  # a second call changes nothing
    assert list(fused.state_dict()) == list(state)
    # deploy=True builds the same structure; the fused weights load into it
    deployed = build(name, deploy=True)
    assert deployed.deploy
    assert {k: v.shape for k, v in deployed.state_dict().items()} == {
        k: v.shape for k, v in state.items()}
    deployed.load_state_dict(state, strict=True)
    assert max_abs_difference(outputs(deployed, x), expected) < 1e-4


def test_deployed_tbc_is_the_group_convolution_with_its_norm_folded():
    tbc = TiedBlockConv2d(8, 12, 3, padding=1, blocks=4, bias=True)
    norm = randomize_tied(nn.BatchNorm2d(12))
    conv = tbc.fuse(norm)
    assert (conv.groups, conv.weight.shape) == (4, (12, 2, 3, 3))
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        expected = norm(tbc(x))
        # by hand: the tied filter on each block of 2 input channels
        by_hand = torch.cat([
            tbc.conv(part) for part in x.split(2, 1)], 1)
        assert torch.allclose(tbc(x), by_hand, atol=1e-6)
        assert max_abs_difference([conv(x)], [expected]) < 1e-5


@pytest.mark.parametrize('plugin', ['se', 'gcb'])
def test_deployed_tied_plugins_equal_the_trained_ones(plugin):
    torch.manual_seed(1)
    module = (TiedSE(32, ratio=4, blocks=4) if plugin == 'se' else TiedGCB(
        32, ratio=1 / 2, blocks=4,
        fusion_types=('channel_add', 'channel_mul')))
    randomize_tied(module)
    x = torch.randn(2, 32, 6, 6)
    expected = outputs(module, x)
    assert max_abs_difference(expected, [x]) > 0.1
    fused = fuse_model(copy.deepcopy(module))
    assert not tied_layers(fused)
    assert max_abs_difference(outputs(fused, x), expected) < 1e-5
    if plugin == 'se':
        # the tied 8 x 2 map on the block diagonal of a 32 x 8 weight
        weight = fused.squeeze.weight
        assert weight.shape == (8, 32)
        assert torch.equal(weight[2:4, 8:16], module.squeeze.weight)
        assert not weight[2:4, :8].any()


def test_fuse_tool_fuses_a_tied_classifier(tmp_path, capsys):
    config = tmp_path / 'tiny-tied.py'
    config.write_text(TIED_CLASSIFIER)
    model = randomize_tied(build_model_from_config(Config.fromfile(
        str(config))))
    checkpoint = str(tmp_path / 'trained.pth')
    save_checkpoint({'state_dict': model.state_dict()}, checkpoint)
    out_dir = tmp_path / 'fused'
    load_tool('fuse_model').main([
        str(config), checkpoint, '--out-dir',
        str(out_dir), '--input-shape', '2', '3', '64', '64'
    ])
    assert 'fused vs original: max |difference|' in capsys.readouterr().out
    deploy_cfg = Config.fromfile(str(out_dir / 'tiny-tied_deploy.py'))
    assert deploy_cfg.model.backbone.deploy is True
    deployed = build_model_from_config(deploy_cfg)
    load_checkpoint(deployed, deploy_cfg.load_from, strict=True)
    assert not tied_layers(deployed.backbone)
    x = torch.randn(3, 3, 64, 64)
    deployed.eval()
    with torch.no_grad():
        assert max_abs_difference([deployed(x, mode='tensor')],
                                  [model(x, mode='tensor')]) < 1e-4
