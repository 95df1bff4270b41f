"""TiedResNeSt (Tied Block Convolution, Figure 4c, Table 1) on mmdet's
ResNeSt: its tied layers, the ResNeSt-50-fast baseline and TiedResNeSt50-S
configs (``configs/tied_resnest/``), the detection configs on mmdet's
ResNeSt ones (``configs/detection/tied_resnest/``) and mmdet's own ResNeSt
backbone tests on it (its conformance behaviours: in
tests/test_backbone_conformance.py)."""
import functools
import os.path as osp
from glob import glob

import mmdet
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.backbones import ResNeSt
from mmdet.models.backbones.resnest import SplitAttentionConv2d
from mmengine.config import Config
from mmpretrain.structures import DataSample

import sharedbasis_mm  # noqa: F401
from sharedbasis_mm.analysis import build_model_from_config, complexity_row
from sharedbasis_mm.backbones import (GroupedTBC, TiedResNeSt,
                                      TiedResNeStBottleneck,
                                      TiedSplitAttentionConv2d)
from sharedbasis_mm.layers import TiedBlockConv2d
from config_helpers import one_thread  # noqa: F401 (an autouse fixture)
from config_helpers import without_scope
from two_iteration_training import (detection_batch, few_proposals,
                                    train_two_iterations)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(ROOT, 'configs', 'tied_resnest')
DETECTION_DIR = osp.join(ROOT, 'configs', 'detection', 'tied_resnest')
DETECTION_CONFIGS = sorted(glob(osp.join(DETECTION_DIR, '*.py')))
MMDET_CONFIGS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs')
FC = 2048 * 1000 + 1000  # the ImageNet classifier's fc
TINY = dict(depth=50, base_channels=8, stem_channels=8)


@functools.lru_cache(maxsize=None)
def load_config(path: str) -> Config:
    return Config.fromfile(path)


def config_id(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


def randomize_norms(model: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, std=0.1)
    return model


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------
# the layers


def test_grouped_tbc_is_a_tbc_per_group():
    """Group g maps its input channels to its output channels by one thin
    filter W_g applied to each of its B blocks (eq. 4, groups outermost)."""
    torch.manual_seed(0)
    groups, blocks = 2, 2
    layer = GroupedTBC(16, 32, 3, padding=1, groups=groups, bias=False,
                       blocks=blocks)
    assert layer.weight.shape == (16, 4, 3, 3)  # (C_out / B, C_in / (G B))
    x = torch.randn(2, 16, 5, 5)
    outs = []
    for g, part in enumerate(x.chunk(groups, 1)):
        thin = layer.weight[8 * g:8 * (g + 1)]
        outs += [F.conv2d(b, thin, padding=1) for b in part.chunk(blocks, 1)]
    torch.testing.assert_close(layer(x), torch.cat(outs, 1))


def test_grouped_tbc_at_one_block_is_the_group_conv():
    torch.manual_seed(0)
    layer = GroupedTBC(8, 16, 3, padding=1, groups=2, bias=False, blocks=1)
    x = torch.randn(1, 8, 4, 4)
    torch.testing.assert_close(
        layer(x), F.conv2d(x, layer.weight, padding=1, groups=2))


def test_split_attention_keeps_mmdets_module():
    """With blocks=1 and no pool it is mmdet's module (same state dict,
    same outputs); the pool-first form pools, then convolves at stride 1."""
    torch.manual_seed(0)
    reference = SplitAttentionConv2d(16, 16, 3, padding=1, radix=2)
    ours = TiedSplitAttentionConv2d(16, 16, 3, padding=1, radix=2)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(2, 16, 8, 8)
    torch.testing.assert_close(ours(x), reference(x))
    pooled = TiedSplitAttentionConv2d(16, 16, 3, padding=1, radix=2,
                                      pool_stride=2)
    pooled.load_state_dict(reference.state_dict())
    torch.testing.assert_close(
        pooled(x), reference(F.avg_pool2d(x, 3, 2, padding=1)))


def test_bottleneck_structure():
    """Figure 4c: entry 1x1 TBC (B = 2), the split attention's 3x3 a TBC
    (B = 2) per radix group; its fc1, fc2 and the exit 1x1 stay plain."""
    block = TiedResNeStBottleneck(
        64, 64, stride=2, radix=2, reduction_factor=4, entry_blocks=2,
        split_blocks=2, avd_first=True,
        downsample=nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(64, 256, 1)))
    assert isinstance(block.conv1, TiedBlockConv2d)
    assert block.conv1.blocks == 2 and block.conv1.weight.shape == (32, 32,
                                                                     1, 1)
    conv = block.conv2.conv
    assert isinstance(conv, GroupedTBC)
    assert (conv.blocks, conv.groups) == (2, 2)
    assert conv.weight.shape == (64, 16, 3, 3)  # 2 * 64 out, 64 in
    for plain in (block.conv2.fc1, block.conv2.fc2, block.conv3):
        assert type(plain) is nn.Conv2d
    # ResNeSt-fast: the pool inside conv2, before the convolution at stride 1
    assert block.conv2.avd_layer.stride == 2 and conv.stride == (1, 1)
    assert not block.avg_down_stride and not hasattr(block, 'avd_layer')
    out = block(torch.randn(2, 64, 16, 16))
    assert out.shape == (2, 256, 8, 8)


# --------------------------------------------------------------------------
# mmdet's test_resnest.py on the tied blocks and backbone (adapted: the tied
# settings given; the pool of a strided block is conv2's under avd_first;
# a bad depth is a ValueError naming it, where mmdet raises a KeyError;
# 16 x 16 inputs for the block)


TIED = dict(entry_blocks=2, split_blocks=2)


def test_resnest_bottleneck():
    with pytest.raises(AssertionError):
        TiedResNeStBottleneck(64, 64, radix=2, reduction_factor=4,
                              style='tensorflow', avd_first=False, **TIED)
    block = TiedResNeStBottleneck(64, 256, radix=2, reduction_factor=4,
                                  stride=2, style='pytorch',
                                  avd_first=False, **TIED)
    assert block.avd_layer.stride == 2
    assert block.conv2.channels == 256
    block = TiedResNeStBottleneck(64, 256, radix=2, reduction_factor=4,
                                  stride=2, style='pytorch', avd_first=True,
                                  **TIED)
    assert block.conv2.avd_layer.stride == 2
    block = TiedResNeStBottleneck(64, 16, radix=2, reduction_factor=4,
                                  avd_first=True, **TIED)
    assert block(torch.randn(2, 64, 16, 16)).shape == (2, 64, 16, 16)


def test_resnest_backbone():
    with pytest.raises(ValueError, match='depth=18'):
        TiedResNeSt(depth=18)
    model = TiedResNeSt(
        depth=50, radix=2, reduction_factor=4, out_indices=(0, 1, 2, 3))
    model.train()
    feat = model(torch.randn(2, 3, 32, 32))
    assert [tuple(f.shape) for f in feat] == [(2, 256, 8, 8), (2, 512, 4, 4),
                                              (2, 1024, 2, 2),
                                              (2, 2048, 1, 1)]


# --------------------------------------------------------------------------
# untied, it is mmdet's ResNeSt


def test_untied_is_mmdets_resnest_with_the_same_weights():
    """entry_blocks = split_blocks = 1, avd_first=False: mmdet's ResNeSt
    (stem_channels=64 as its configs), whose state dict loads as it is; the
    same outputs in eval and train mode."""
    torch.manual_seed(0)
    reference = randomize_norms(
        ResNeSt(depth=50, stem_channels=64, norm_eval=False,
                out_indices=(0, 1, 2, 3)))
    ours = TiedResNeSt(50, stem_channels=64, avd_first=False,
                       entry_blocks=1, split_blocks=1)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(2, 3, 64, 64)
    for train in (False, True):
        reference.train(train)
        ours.train(train)
        with torch.no_grad():
            for out, expected in zip(ours(x), reference(x)):
                torch.testing.assert_close(out, expected)


def test_params_by_hand():
    """Each B = 2 TBC holds a quarter of the weights of the convolution it
    replaces: TiedResNeSt-50 = ResNeSt-50 less 3/4 of every entry 1x1 and
    3x3 weight."""
    untied = TiedResNeSt(50, entry_blocks=1, split_blocks=1)
    tied = TiedResNeSt(50)
    replaced = sum(
        block.conv1.weight.numel() + block.conv2.conv.weight.numel()
        for block in untied.residual_blocks())
    assert count(tied) == count(untied) - replaced * 3 // 4


# --------------------------------------------------------------------------
# Table 1


def classification(name: str) -> str:
    return osp.join(CONFIG_DIR, f'{name}_8xb32_in1k.py')


def test_resnest50_fast_as_table_1():
    """27.5M and 4.4G (Table 1; the ResNeSt paper gives 27.5M and 4.34G for
    2s1x64d fast): within 3%; pooling after the 3x3 instead (mmdet's
    ResNeSt-50) costs the 5.39G of the ResNeSt paper."""
    row = complexity_row(classification('resnest50-fast'))
    assert abs(row['params_ratio'] - 1) < 0.03
    assert abs(row['flops_ratio'] - 1) < 0.03
    cfg = load_config(classification('resnest50-fast')).copy()
    cfg.model = Config(cfg.model.to_dict())
    cfg.model.backbone.avd_first = False
    from sharedbasis_mm.analysis import count_flops
    flops = count_flops(build_model_from_config(cfg), (3, 224, 224))
    assert abs(flops / 5.39e9 - 1) < 0.01


@pytest.mark.xfail(
    strict=True,
    reason='Table 1 gives 16.5M and 3.6G for TiedResNeSt50-S; the paper\'s '
    'description (entry 1x1 and all 3x3 TBC with B = 2 in ResNeSt-50-fast) '
    'gives 15.75M (-4.6%) and 2.97G (-18%): see '
    'docs/tied_block_convolution.md')
def test_tiedresnest50_s_as_table_1():
    row = complexity_row(classification('tiedresnest50-s'))
    assert abs(row['params_ratio'] - 1) < 0.03
    assert abs(row['flops_ratio'] - 1) < 0.03


def test_tiedresnest50_s_counts():
    """What the reading gives: 57% of the baseline's parameters, 68% of
    its FLOPs (Table 1: 60%, 82%)."""
    tied = complexity_row(classification('tiedresnest50-s'))
    base = complexity_row(classification('resnest50-fast'))
    assert round(tied['params'] / 1e6, 2) == 15.75
    assert round(tied['flops'] / 1e9, 2) == 2.97
    assert round(tied['params'] / base['params'], 2) == 0.57
    assert round(tied['flops'] / base['flops'], 2) == 0.68


# --------------------------------------------------------------------------
# configs


def test_classification_configs():
    """TiedResNeSt50-S states only its tied settings over the baseline,
    which is a TiedResNeSt with nothing tied on the paper's schedule."""
    base = load_config(classification('resnest50-fast'))
    tied = load_config(classification('tiedresnest50-s'))
    assert base.model.backbone.type == tied.model.backbone.type == (
        'TiedResNeSt')
    assert (base.model.backbone.entry_blocks,
            base.model.backbone.split_blocks) == (1, 1)
    assert tied.model.backbone.to_dict() == dict(
        base.model.backbone.to_dict(), entry_blocks=2, split_blocks=2)
    for key in ('optim_wrapper', 'param_scheduler', 'train_cfg'):
        assert tied[key] == base[key]
    assert base.optim_wrapper.optimizer.lr == 0.1
    assert base.train_cfg.max_epochs == 100


@pytest.mark.parametrize('name', ['resnest50-fast', 'tiedresnest50-s'])
def test_classification_config_trains_two_iterations(name):
    batch = dict(
        inputs=[torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
                for _ in range(2)],
        data_samples=[DataSample().set_gt_label(i) for i in (1, 7)])
    train_two_iterations(load_config(classification(name)), batch)


MMDET_PARENTS = {
    config_id(c): osp.join(
        MMDET_CONFIGS, 'resnest',
        osp.basename(c).replace('_tiedresnest50-s_', '_s50_'))
    for c in DETECTION_CONFIGS
}


def test_a_detection_config_per_mmdet_resnest50_config():
    mmdet_s50 = sorted(
        osp.basename(p)
        for p in glob(osp.join(MMDET_CONFIGS, 'resnest', '*_s50_*.py')))
    assert sorted(osp.basename(p) for p in MMDET_PARENTS.values()) == (
        mmdet_s50)
    assert {c.split('_')[0] for c in MMDET_PARENTS} == {
        'faster-rcnn', 'mask-rcnn', 'cascade-rcnn', 'cascade-mask-rcnn'
    }


@pytest.mark.parametrize('config', DETECTION_CONFIGS, ids=config_id)
def test_detection_config_is_mmdets_with_the_tied_backbone(config):
    """mmdet's ResNeSt-50 config (SyncBN, norm_eval=False, frozen stem and
    first stage, multi-scale training, its schedule), the backbone tied and
    loading the converted TiedResNeSt50-S ImageNet backbone; the test set
    also evaluated per occlusion ratio."""
    ours = load_config(config)
    parent = load_config(MMDET_PARENTS[config_id(config)])
    backbone = without_scope(ours.model.backbone)
    expected = dict(
        without_scope(parent.model.backbone),
        type='TiedResNeSt',
        avd_first=True,
        entry_blocks=2,
        split_blocks=2,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/backbones/tiedresnest50-s_8xb32_in1k.pth'))
    assert backbone == expected
    for key in ('train_dataloader', 'optim_wrapper', 'param_scheduler',
                'train_cfg', 'val_evaluator'):
        assert without_scope(ours[key]) == without_scope(parent[key]), key
    assert without_scope(
        {k: v for k, v in ours.model.items() if k != 'backbone'}
    ) == without_scope(
        {k: v for k, v in parent.model.items() if k != 'backbone'})
    assert without_scope(ours.test_evaluator) == dict(
        without_scope(parent.test_evaluator), type='CocoOcclusionRatioMetric',
        instance_shape='box')
    # the ImageNet backbone's state dict fits the detector's
    detector_backbone = build_model_from_config(ours).backbone
    cls_backbone = build_model_from_config(
        load_config(classification('tiedresnest50-s'))).backbone
    assert {k: v.shape for k, v in detector_backbone.state_dict().items()
            } == {k: v.shape for k, v in cls_backbone.state_dict().items()}


@pytest.mark.parametrize('config', DETECTION_CONFIGS, ids=config_id)
def test_detection_config_trains_two_iterations(config):
    """Small images, few proposals, no pretrained backbone; SyncBN runs as
    BN in this single process (torch's SyncBatchNorm without a process
    group)."""
    cfg = load_config(config).copy()
    cfg.model = Config(cfg.model.to_dict())
    cfg.model.backbone.init_cfg = None
    few_proposals(cfg.model)
    with_mask = 'mask' in osp.basename(config)
    train_two_iterations(cfg, detection_batch(80, with_mask))


# --------------------------------------------------------------------------
# bad arguments


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(entry_blocks=0), ValueError, 'entry_blocks=0'),
    (dict(entry_blocks=3), ValueError,
     'inplanes=8 must be divisible by entry_blocks=3'),
    (dict(split_blocks=3), ValueError,
     r'width=8 must be divisible by radix \* groups \* split_blocks'),
    (dict(split_blocks=1.5), TypeError, 'split_blocks=1.5'),
    (dict(radix=0), ValueError, 'radix=0'),
    (dict(avd_first='yes'), TypeError, "avd_first='yes'"),
    (dict(drop_path_rate=0.1), ValueError, 'drop_path_rate=0.1'),
    (dict(depth=34), ValueError, 'depth=34'),
])
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        TiedResNeSt(**{**TINY, **kwargs})
