"""The authors' CIFAR-100 DenseNet121 and ResNeXt50 (Table 2 of Learning
Deeply Shared Filter Bases) converted into our configs' models.

The fixtures of the shared-basis models come with the project's fixtures
(tests/net_rl2_fixtures.py). Those of the plain baselines,
``cifar100_densenet121`` (their ``DenseNet121()``) and
``cifar100_resnext50_32x4d`` (their ``ResNext50_32x4d(100)``), were made
the same way: their model from github.com/ssregibility/Net_RL2 at commit
936a886, the weights of the fixtures' rule, the logits of their forward on
the seeded input, eval and train mode, torch 2.14.1 on the CPU.
"""
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from net_rl2_fixtures import (fixture_input, fixture_logits,
                              fixture_state_dict)
from torch.nn.modules.batchnorm import _BatchNorm

import sharedbasis_mm  # noqa: F401
from sharedbasis_mm.analysis import build_model_from_config
from sharedbasis_mm.converters import NetRL2ConversionError, convert_net_rl2

CONFIGS = osp.join(osp.dirname(osp.dirname(__file__)), 'configs')

CASES = [
    ('cifar100_densenet121_s16u1',
     'shared_basis/densenet121-s16u1_1xb128_cifar100.py'),
    ('cifar100_resnext50_s64u4',
     'shared_basis/resnext50-32x4d-s64u4_1xb128_cifar100.py'),
    ('cifar100_densenet121', 'baselines/densenet121_1xb128_cifar100.py'),
    ('cifar100_resnext50_32x4d',
     'baselines/resnext50-32x4d_1xb128_cifar100.py'),
]


def build(config, **backbone):
    cfg = Config.fromfile(osp.join(CONFIGS, config))
    cfg.model.backbone.update(backbone)
    return build_model_from_config(cfg)


def relative_error(actual, expected):
    return ((actual - expected).norm() / expected.norm()).item()


def logits(model, inputs, train):
    """The logits in eval mode, or in train mode with batch statistics in
    every norm, whatever the backbone's ``norm_eval`` (mmdet's ResNeXt
    freezes them by default)."""
    model.train(train)
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.train(train)
    with torch.no_grad():
        return model(inputs, mode='tensor')


@pytest.mark.parametrize('name,config', CASES)
def test_converted_model_gives_the_authors_logits(name, config):
    model = build(config)
    state_dict = convert_net_rl2(fixture_state_dict(name), model, config)
    model.load_state_dict(state_dict, strict=True)
    inputs = fixture_input(name)
    expected_eval, expected_train = fixture_logits(name)
    assert relative_error(logits(model, inputs, False), expected_eval) < 1e-4
    # batch statistics in every BatchNorm
    assert relative_error(logits(model, inputs, True), expected_train) < 1e-4


def test_densenet_converts_into_one_basis_per_dense_block():
    """Their fourth dense block uses the third one's basis: the paper's
    reading, one basis per block, takes a copy of it and computes the same."""
    name, config = CASES[0]
    model = build(config, basis_indices=None)
    bases = {
        id(stage.block[0].conv2.shared_basis)
        for stage in model.backbone.stages
    }
    assert len(bases) == 4
    model.load_state_dict(
        convert_net_rl2(fixture_state_dict(name), model, config))
    assert relative_error(
        logits(model, fixture_input(name), False),
        fixture_logits(name)[0]) < 1e-4


def test_densenet_with_transition_activations_is_refused():
    name, config = CASES[0]
    model = build(config, transition_act=True)
    with pytest.raises(NetRL2ConversionError, match='transition_act'):
        convert_net_rl2(fixture_state_dict(name), model, config)


@pytest.mark.parametrize('name,config,key', [
    ('cifar100_resnext50_s64u4', CASES[0][1],
     'features.dense_block_layer_0.bottle_neck_layer_0.shared_basis.weight'),
    ('cifar100_densenet121', CASES[0][1], 'shared_basis_1.weight'),
    ('cifar100_densenet121_s16u1', CASES[2][1],
     'features.dense_block_layer_0.bottle_neck_layer_0.residual_function.0.'
     'weight'),
    ('cifar100_resnext50_32x4d', CASES[1][1], 'shared_basis_1.weight'),
])
def test_a_checkpoint_for_another_model_is_refused(name, config, key):
    """The message names the first checkpoint key that does not fit."""
    model = build(config)
    with pytest.raises(NetRL2ConversionError, match=re.escape(repr(key))):
        convert_net_rl2(fixture_state_dict(name), model, config)


def test_copies_of_a_basis_that_differ_are_refused():
    name, config = CASES[1]
    state_dict = fixture_state_dict(name)
    state_dict['layer2.2.shared_basis.weight'] = (
        state_dict['layer2.2.shared_basis.weight'] + 1)
    with pytest.raises(NetRL2ConversionError, match='layer2.2.shared_basis'):
        convert_net_rl2(state_dict, build(config), config)
