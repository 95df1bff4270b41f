"""TiedSE in mmpretrain's SEResNet and EfficientNet (Tied Block Convolution,
Table 3): ``SEResNetTiedSE`` and ``EfficientNetTiedSE``, their configs
(``configs/tied_se/``) and mmpretrain's own EfficientNet backbone tests on
them (SEResNet's run in tests/test_backbone_conformance.py)."""
import functools
import os.path as osp
from glob import glob

import mmpretrain
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmpretrain.models.backbones import EfficientNet, SEResNet
from mmpretrain.models.utils import SELayer
from mmpretrain.structures import DataSample
from torch.nn.modules import GroupNorm
from torch.nn.modules.batchnorm import _BatchNorm

import sharedbasis_mm  # noqa: F401
from sharedbasis_mm.analysis import build_model_from_config, complexity_row
from sharedbasis_mm.attention import TiedSE, replace_se_layers
from sharedbasis_mm.backbones import EfficientNetTiedSE, SEResNetTiedSE
from config_helpers import one_thread  # noqa: F401 (an autouse fixture)
from config_helpers import without_scope
from two_iteration_training import train_two_iterations

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(ROOT, 'configs', 'tied_se')
MMPRETRAIN_CONFIGS = osp.join(
    osp.dirname(mmpretrain.__file__), '.mim', 'configs')
CONFIGS = sorted(glob(osp.join(CONFIG_DIR, '*.py')))
# (SE baseline config, TiedSE config) of each host
HOSTS = {
    'seresnet50': ('seresnet50_8xb32_in1k.py',
                   'seresnet50-tiedse-b2_8xb32_in1k.py'),
    'efficientnet-b0': ('efficientnet-b0_8xb32_in1k.py',
                        'efficientnet-b0-tiedse-b2_8xb32_in1k.py'),
}


@functools.lru_cache(maxsize=None)
def load_config(name: str) -> Config:
    return Config.fromfile(osp.join(CONFIG_DIR, name))


def config_id(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


def se_state_to_tied_se(model: nn.Module, state: dict) -> dict:
    """The state dict of ``model`` (with mmpretrain's SELayer modules) in
    the layout of the same model with TiedSE at B = 1: each 1 x 1
    convolution of an SE becomes the linear map of a TFC."""
    state = dict(state)
    for name, module in model.named_modules():
        if isinstance(module, SELayer):
            for conv, tfc in (('conv1', 'squeeze'), ('conv2', 'excite')):
                for param in ('weight', 'bias'):
                    value = state.pop(f'{name}.{conv}.conv.{param}')
                    state[f'{name}.{tfc}.linear.{param}'] = (
                        value.flatten(1) if param == 'weight' else value)
    return state


def batch(num: int = 2, size: int = 64) -> dict:
    generator = torch.Generator().manual_seed(0)
    return dict(
        inputs=[
            torch.randint(0, 256, (3, size, size), generator=generator,
                          dtype=torch.uint8) for _ in range(num)
        ],
        data_samples=[DataSample().set_gt_label(i % 10) for i in range(num)])


# --------------------------------------------------------------------------
# B = 1 is the SE baseline


@pytest.mark.parametrize('host', list(HOSTS))
def test_b1_equals_the_se_baseline_with_the_same_weights(host):
    """At se_blocks=1 the classifier of the TiedSE config gives the logits
    of mmpretrain's SE model (the baseline config) with the same weights,
    in eval mode and in train mode (batch statistics)."""
    baseline_name, tied_name = HOSTS[host]
    torch.manual_seed(0)
    baseline = build_model_from_config(load_config(baseline_name))
    baseline.init_weights()
    for module in baseline.modules():  # non-trivial norms and SE weights
        if isinstance(module, (_BatchNorm, SELayer)):
            for p in module.parameters():
                nn.init.normal_(p, mean=0.5 if p.ndim == 1 else 0, std=0.2)
    cfg = load_config(tied_name).copy()
    cfg.model = Config(cfg.model.to_dict())
    cfg.model.backbone.se_blocks = 1
    tied = build_model_from_config(cfg)
    assert type(baseline.backbone) in (SEResNet, EfficientNet)
    assert isinstance(tied.backbone, type(baseline.backbone))
    assert type(tied.backbone) is not type(baseline.backbone)
    tied.load_state_dict(
        se_state_to_tied_se(baseline, baseline.state_dict()))
    inputs = baseline.data_preprocessor(batch(), False)['inputs']
    for train in (False, True):
        baseline.train(train)
        tied.train(train)
        with torch.no_grad():
            expected = baseline(inputs, mode='tensor')
            logits = tied(inputs, mode='tensor')
        assert not torch.allclose(expected, torch.zeros_like(expected))
        torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('cls,arg', [(SEResNetTiedSE, 50),
                                     (EfficientNetTiedSE, 'b0')])
@pytest.mark.parametrize('blocks', [1, 2, 4])
def test_every_se_is_replaced_by_a_tied_se_of_its_widths(cls, arg, blocks):
    """No SELayer is left, one TiedSE sits under each SE's name, with the
    SE's channels, its hidden width divided among the blocks
    (max(2, h // B) per block) and its activation."""
    host = cls.__mro__[2](arg)
    model = cls(arg, se_blocks=blocks)
    ses = {n: m for n, m in host.named_modules() if isinstance(m, SELayer)}
    tied = {n: m for n, m in model.named_modules() if isinstance(m, TiedSE)}
    assert not any(isinstance(m, SELayer) for m in model.modules())
    assert ses and sorted(tied) == sorted(ses)
    for name, se in ses.items():
        squeeze = tied[name].squeeze
        assert squeeze.in_features == se.conv1.conv.in_channels
        assert squeeze.blocks == blocks
        hidden = se.conv1.conv.out_channels
        assert squeeze.out_features == max(2, hidden // blocks) * blocks
        assert type(tied[name].activate) is type(se.conv1.activate)
    # everything else is the host's
    others = {
        k: v.shape
        for k, v in host.state_dict().items()
        if not any(k.startswith(f'{n}.') for n in ses)
    }
    assert {k: model.state_dict()[k].shape for k in others} == others


# --------------------------------------------------------------------------
# Table 3


@pytest.mark.parametrize('config', CONFIGS, ids=config_id)
def test_attention_params_as_table_3(config):
    """The SE / TiedSE parameters within 3% of Table 3 or equal at its
    rounding to 0.01M (B = 4 in EfficientNet-B0: 0.0415M, the paper's
    0.04M), the model size within 3% of the SE model's 28.1M / 5.3M (less
    the SE's difference for TiedSE, the config's reading)."""
    row = complexity_row(config, with_flops=False)
    assert row['source'] == 'Tied Block Convolution, Table 3'
    measured, paper = row['attention_params'], row['paper_attention_params']
    assert (abs(measured / paper - 1) < 0.03
            or round(measured / 1e6, 2) == round(paper / 1e6, 2))
    assert abs(row['params_ratio'] - 1) < 0.03


def test_attention_params_by_hand():
    """SEResNet-50: every SE is C -> C/16 -> C; a TiedSE at B holds one
    (C/B) x (C/16/B) map each way, plus biases (C/16 and C/B)."""
    widths = [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3
    for blocks in (1, 2, 4, 8):
        expected = sum(2 * (c // blocks) * (c // 16 // blocks) + c // 16 //
                       blocks + c // blocks for c in widths)
        model = SEResNetTiedSE(50, se_blocks=blocks)
        measured = sum(
            p.numel() for m in model.modules() if isinstance(m, TiedSE)
            for p in m.parameters())
        assert measured == expected


def test_configs_inherit_mmpretrain_and_their_sibling():
    """Each variant states only what differs from its sibling: the
    baselines are mmpretrain's configs, whose training settings the
    variants keep."""
    for host, (baseline_name, _) in HOSTS.items():
        baseline = load_config(baseline_name)
        folder = 'seresnet' if host == 'seresnet50' else 'efficientnet'
        upstream = Config.fromfile(
            osp.join(MMPRETRAIN_CONFIGS, folder, baseline_name))
        for key in ('model', 'optim_wrapper', 'param_scheduler',
                    'train_cfg', 'train_dataloader'):
            assert without_scope(baseline[key]) == without_scope(
                upstream[key]), key
    blocks = {
        config_id(c): load_config(osp.basename(c)).model.backbone.get(
            'se_blocks')
        for c in CONFIGS
    }
    assert blocks == {
        'seresnet50_8xb32_in1k': None,
        'seresnet50-tiedse-b2_8xb32_in1k': 2,
        'seresnet50-tiedse-b4_8xb32_in1k': 4,
        'seresnet50-tiedse-b8_8xb32_in1k': 8,
        'efficientnet-b0_8xb32_in1k': None,
        'efficientnet-b0-tiedse-b2_8xb32_in1k': 2,
        'efficientnet-b0-tiedse-b4_8xb32_in1k': 4,
    }


@pytest.mark.parametrize('config', CONFIGS, ids=config_id)
def test_config_trains_two_iterations(config):
    model, logs = train_two_iterations(load_config(config), batch(size=32))
    assert set(logs[0]) == {'loss'}
    if 'tiedse' in config:
        assert any(isinstance(m, TiedSE) for m in model.modules())


# --------------------------------------------------------------------------
# mmpretrain's test_efficientnet.py on EfficientNetTiedSE (adapted: 64 x 64
# inputs instead of 224 x 224, so every feature map is 224 / 64 = 3.5 times
# smaller; se_blocks=2 in every model)


def check_norm_state(modules, train_state: bool) -> bool:
    return all(m.training == train_state for m in modules
               if isinstance(m, _BatchNorm))


def test_efficientnet_arch_and_frozen_stages_checked():
    with pytest.raises(AssertionError):
        EfficientNetTiedSE(arch='others', se_blocks=2)
    for arch in ('b0', 'b1', 'es'):
        with pytest.raises(ValueError):
            EfficientNetTiedSE(arch=arch, frozen_stages=12, se_blocks=2)


def test_efficientnet_frozen_stages_and_norm_eval():
    frozen_stages = 7
    model = EfficientNetTiedSE(
        arch='b0', frozen_stages=frozen_stages, se_blocks=2)
    model.init_weights()
    model.train()
    for i in range(frozen_stages):
        layer = model.layers[i]
        for mod in layer.modules():
            if isinstance(mod, _BatchNorm):
                assert mod.training is False
        for param in layer.parameters():
            assert param.requires_grad is False
    model = EfficientNetTiedSE(norm_eval=True, se_blocks=2)
    model.init_weights()
    model.train()
    assert check_norm_state(model.modules(), False)


@pytest.mark.parametrize('arch,out_channels', [
    ('b0', [32, 16, 24, 40, 112, 320, 1280]),
    ('es', [32, 24, 32, 48, 144, 192, 1280]),
])
@pytest.mark.parametrize('norm_cfg', [None, dict(type='GN', num_groups=2)])
def test_efficientnet_forward(arch, out_channels, norm_cfg):
    kwargs = dict(norm_cfg=norm_cfg) if norm_cfg else {}
    model = EfficientNetTiedSE(
        arch=arch, out_indices=tuple(range(7)), se_blocks=2, **kwargs)
    if norm_cfg:
        norms = [m for m in model.modules()
                 if isinstance(m, (GroupNorm, _BatchNorm))]
        assert norms and all(isinstance(m, GroupNorm) for m in norms)
    model.init_weights()
    model.train()
    feat = model(torch.randn(1, 3, 64, 64))
    # 224 input: 112, 112, 56, 28, 14, 7, 7
    sizes = [32, 32, 16, 8, 4, 2, 2]
    assert [tuple(f.shape) for f in feat] == [
        (1, c, s, s) for c, s in zip(out_channels, sizes)
    ]


# --------------------------------------------------------------------------
# bad arguments


@pytest.mark.parametrize('build,error,match', [
    (lambda: SEResNetTiedSE(50, se_blocks=0), ValueError, 'se_blocks=0'),
    (lambda: SEResNetTiedSE(50, se_blocks=True), TypeError,
     'se_blocks=True'),
    (lambda: SEResNetTiedSE(50, se_blocks=3), ValueError,
     r'SEResNetTiedSE: se_blocks=3 does not fit an SE module .*'
     r'in_channels=256 must be divisible by blocks=3'),
    (lambda: EfficientNetTiedSE(se_blocks=5), ValueError,
     r'EfficientNetTiedSE: se_blocks=5 does not fit .*in_channels='),
    (lambda: EfficientNetTiedSE(se_min_channels=0), ValueError,
     'se_min_channels=0'),
    (lambda: SEResNetTiedSE(18), KeyError, 'invalid depth 18'),
    (lambda: TiedSE(64, squeeze_channels=0), ValueError,
     'squeeze_channels=0'),
    (lambda: TiedSE(64, act_cfg='ReLU'), TypeError, "act_cfg='ReLU'"),
])
def test_bad_arguments_are_named(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_only_sigmoid_gates_are_replaced():
    se = SELayer(32, act_cfg=(dict(type='ReLU'), dict(type='HSigmoid')))
    with pytest.raises(ValueError, match='gate must be a Sigmoid'):
        replace_se_layers(nn.Sequential(se), blocks=2)
