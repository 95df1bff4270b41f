"""The state-dict layout of the shared bases: one key and one Parameter per
basis, owned by its residual group; refusal of other layouts; norm_cfg and
conv_cfg reaching the shared layers."""
import copy
import re

import pytest
import torch
import torch.nn as nn
from mmdet.models.backbones import ResNet
from mmengine.model import (ExponentialMovingAverage, convert_sync_batchnorm,
                            revert_sync_batchnorm)
from mmengine.optim import build_optim_wrapper
from mmengine.runner import load_checkpoint, save_checkpoint
from torch.nn.modules.batchnorm import _BatchNorm

import sharedbasis_mm  # noqa: F401
from sharedbasis_mm.backbones import (SharedBasisMobileNetV2,
                                      SharedBasisResNet)
from sharedbasis_mm.layers import (SharedBasisConv2d, find_basis_users,
                                   find_shared_bases)

# (arguments, the state-dict keys of the bases)
LAYOUTS = [
    (dict(depth=18, basis_cfg=dict(shared_rank=4)),
     [f'layer{i}.shared_basis' for i in range(1, 5)]),
    (dict(depth=34, basis_cfg=dict(shared_rank=4, num_bases=2)),
     [f'layer{i}.shared_basis_conv{c}' for i in range(1, 5)
      for c in (1, 2)]),
    (dict(depth=50, basis_cfg=dict(share='conv2')),
     [f'layer{i}.shared_basis_conv2' for i in range(1, 5)]),
    (dict(depth=50, basis_cfg=dict(share='all')),
     [f'layer{i}.shared_basis_conv{c}' for i in range(1, 5)
      for c in (1, 2, 3)]),
    (dict(mobilenet=True, share='expand_project'),
     [f'layer{i}.shared_basis_{p}' for i in (3, 4, 5, 6)
      for p in ('expand', 'project')]),
]


def build(mobilenet=False, **kwargs):
    if mobilenet:
        return SharedBasisMobileNetV2(widen_factor=0.25, **kwargs)
    return SharedBasisResNet(base_channels=8, **kwargs)


def randomized(model, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, 0.3)
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 2)
    model.eval()
    return model


def outputs(model, seed=1):
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(
        seed))
    model.eval()
    with torch.no_grad():
        return torch.cat([out.flatten() for out in model(x)])


@pytest.mark.parametrize('kwargs,keys', LAYOUTS)
def test_one_key_and_one_parameter_per_basis(kwargs, keys):
    model = build(**kwargs)
    state_dict = model.state_dict()
    assert [k for k in state_dict if 'shared_basis' in k] == keys
    bases = find_shared_bases(model)
    assert list(bases) == keys
    params = dict(model.named_parameters())
    for name, basis in bases.items():
        assert params[name] is basis
        assert sum(p is basis for p in model.parameters()) == 1
    users = find_basis_users(model)
    assert all(len(u) >= 2 for u in users.values())
    for name, user_names in users.items():
        for user in user_names:
            assert model.get_submodule(user).shared_basis is bases[name]
            assert not model.get_submodule(user).owns_shared_basis
    # The same through a deepcopy and on a copy of another dtype.
    clone = copy.deepcopy(model).double()
    for name, user_names in find_basis_users(clone).items():
        basis = dict(clone.named_parameters())[name]
        assert basis.dtype == torch.float64
        assert basis is not bases[name]
        assert all(
            clone.get_submodule(u).shared_basis is basis for u in user_names)
    clone.eval()
    clone(torch.randn(1, 3, 32, 32, dtype=torch.float64))


def test_ema_moves_a_shared_basis_as_an_unshared_parameter():
    """mmengine's EMA with update_buffers=True (the EMAHook of RTMDet/YOLOX)
    averages the state dict key by key: each basis moves once."""
    model = build(depth=18, basis_cfg=dict(shared_rank=4))
    ema = ExponentialMovingAverage(model, momentum=0.5, update_buffers=True)
    ema.update_parameters(model)  # the first update copies
    with torch.no_grad():
        for param in model.parameters():
            param.add_(1.)
    ema.update_parameters(model)
    # Half-way from the old value (param - 1) to the new, for every
    # parameter: 0.5, where a basis stored once per user moved 0.75.
    averaged = dict(ema.module.named_parameters())
    assert 'layer1.shared_basis' in averaged
    for name, param in model.named_parameters():
        torch.testing.assert_close(averaged[name], param - 0.5, rtol=0,
                                   atol=1e-6, msg=name)


def test_optimizer_with_paramwise_cfg_sees_each_basis_once():
    """Registered once, a basis needs no bypass_duplicate; custom_keys
    select it by its key."""
    model = build(depth=18, basis_cfg=dict(shared_rank=4))
    wrapper = build_optim_wrapper(
        model,
        dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9,
                             weight_decay=1e-4),
             paramwise_cfg=dict(
                 norm_decay_mult=0.,
                 custom_keys={'shared_basis': dict(decay_mult=0.5)})))
    grouped = [p for group in wrapper.optimizer.param_groups
               for p in group['params']]
    assert len(grouped) == len({id(p) for p in grouped})
    assert {id(p) for p in grouped} == {id(p) for p in model.parameters()}
    for basis in find_shared_bases(model).values():
        group, = [g for g in wrapper.optimizer.param_groups
                  if any(p is basis for p in g['params'])]
        assert group['weight_decay'] == 0.5e-4


def test_frozen_stages_freeze_the_bases_of_their_groups():
    model = build(depth=18, basis_cfg=dict(shared_rank=4), frozen_stages=2)
    bases = find_shared_bases(model)
    assert [n for n, b in bases.items() if b.requires_grad] == [
        'layer3.shared_basis', 'layer4.shared_basis'
    ]


def test_another_sharing_layout_is_refused_naming_the_keys(tmp_path):
    double = build(depth=18, basis_cfg=dict(shared_rank=4, num_bases=2))
    single = build(depth=18, basis_cfg=dict(shared_rank=4, num_bases=1))
    with pytest.raises(RuntimeError) as error:
        single.load_state_dict(double.state_dict())
    message = str(error.value)
    assert 'Missing key(s) in state_dict: "layer1.shared_basis"' in message
    assert '"layer1.shared_basis_conv1", "layer1.shared_basis_conv2"' in (
        message)
    path = str(tmp_path / 'double.pth')
    save_checkpoint({'state_dict': double.state_dict()}, path)
    with pytest.raises(RuntimeError, match='layer1.shared_basis_conv1'):
        load_checkpoint(single, path, strict=True)


def test_assign_loading_rebinds_the_layers():
    source = randomized(
        build(depth=34, basis_cfg=dict(shared_rank=4, num_bases=2)))
    model = build(depth=34, basis_cfg=dict(shared_rank=4, num_bases=2))
    model.load_state_dict(copy.deepcopy(source.state_dict()), assign=True)
    for name, users in find_basis_users(model).items():
        basis = dict(model.named_parameters())[name]
        assert all(model.get_submodule(u).shared_basis is basis
                   for u in users)
    assert torch.equal(outputs(model), outputs(source))


def test_plain_resnet_checkpoint_says_how_to_get_a_compatible_one(
        tmp_path, capsys):
    plain = ResNet(depth=18, base_channels=8).state_dict()
    model = build(depth=18, basis_cfg=dict(shared_rank=4))
    hint = (r'the checkpoint holds plain convolution weights '
            r'\(layer1.1.conv1.weight, ...\) where the layers share filter '
            r'bases, and not the bases \(layer1.shared_basis\): it is a plain '
            r'ResNet checkpoint '
            r'.*tools/model_converters/convert_cls_checkpoint.py.*'
            r'tools/model_converters/net_rl2_to_mmpretrain.py')
    with pytest.raises(RuntimeError, match=hint):
        model.load_state_dict(plain)
    # mmengine's Pretrained loading (strict=False) reports it with the
    # missing and unexpected keys.
    path = str(tmp_path / 'resnet18.pth')
    save_checkpoint({'state_dict': plain}, path)
    load_checkpoint(model, path, strict=False)
    printed = capsys.readouterr().out
    assert re.search(hint, printed)
    assert 'missing keys in source state_dict: layer1.shared_basis' in printed
    bottleneck = build(depth=50, basis_cfg=dict(share='conv2'))
    with pytest.raises(RuntimeError,
                       match=r'\(layer1.1.conv2.weight, ...\) .* '
                       r'\(layer1.shared_basis_conv2\)'):
        bottleneck.load_state_dict(ResNet(depth=50,
                                          base_channels=8).state_dict())


@pytest.mark.parametrize('norm_cfg,norm_type', [
    (dict(type='BN', requires_grad=True), nn.BatchNorm2d),
    (dict(type='GN', num_groups=2, requires_grad=True), nn.GroupNorm),
    (dict(type='SyncBN', requires_grad=True), nn.SyncBatchNorm),
])
def test_norm_cfg_reaches_the_norms_of_the_shared_layers(norm_cfg, norm_type):
    def norms(model):
        return [m for m in model.modules()
                if isinstance(m, (_BatchNorm, nn.GroupNorm))]

    model = build(depth=18, basis_cfg=dict(shared_rank=3), norm_cfg=norm_cfg)
    # The norms of mmdet's ResNet, and one after each basis (the two
    # shared convolutions of the second block of each of the four groups).
    plain = ResNet(depth=18, base_channels=8, norm_cfg=norm_cfg)
    assert len(norms(model)) == len(norms(plain)) + 2 * 4
    assert all(isinstance(m, norm_type) for m in norms(model))
    if norm_type is nn.SyncBatchNorm:
        reverted = revert_sync_batchnorm(model)
        assert not any(isinstance(m, nn.SyncBatchNorm)
                       for m in reverted.modules())
        reverted.train()
        reverted(torch.randn(2, 3, 32, 32))
    if norm_type is nn.BatchNorm2d:
        # mmengine's conversion reaches the basis norms and keeps the
        # sharing.
        synced = convert_sync_batchnorm(model)
        assert all(isinstance(m, nn.SyncBatchNorm) for m in norms(synced))
        assert len(norms(synced)) == len(norms(plain)) + 2 * 4
        for name, users in find_basis_users(synced).items():
            basis = dict(synced.named_parameters())[name]
            assert all(synced.get_submodule(u).shared_basis is basis
                       for u in users)
    frozen = build(depth=18, basis_cfg=dict(shared_rank=3),
                   norm_cfg=dict(norm_cfg, requires_grad=False))
    assert all(not p.requires_grad for m in frozen.modules()
               if isinstance(m, SharedBasisConv2d)
               for p in m.norm.parameters())
    # basis_cfg.norm_cfg=None removes them; a dict sets them apart.
    assert not [m for m in build(depth=18, norm_cfg=norm_cfg,
                                 basis_cfg=dict(shared_rank=3,
                                                norm_cfg=None)).modules()
                if isinstance(m, SharedBasisConv2d) and m.norm is not None]
    apart = build(depth=18, norm_cfg=norm_cfg,
                  basis_cfg=dict(shared_rank=3,
                                 norm_cfg=dict(type='IN', affine=True)))
    assert all(type(m.norm) is nn.InstanceNorm2d for m in apart.modules()
               if isinstance(m, SharedBasisConv2d))


def test_bad_basis_norm_cfg():
    with pytest.raises(ValueError,
                       match=r"SharedBasisResNet \(depth=18\): "
                       r"basis_cfg.norm_cfg must be a norm config dict, None "
                       r"\(no norm\) or \"norm_cfg\" .*, got "
                       r"basis_cfg.norm_cfg='BN'"):
        build(depth=18, basis_cfg=dict(shared_rank=4, norm_cfg='BN'))


@pytest.mark.parametrize('kwargs,owner', [
    (dict(depth=18, basis_cfg=dict(shared_rank=4)), 'SharedBasisResNet'),
    (dict(depth=50, basis_cfg=dict(share='conv2')), 'SharedBasisResNet'),
    (dict(mobilenet=True), 'SharedBasisMobileNetV2'),
])
def test_conv_cfg_that_cannot_apply_to_a_basis_is_refused(kwargs, owner):
    with pytest.raises(
            ValueError,
            match=rf"{owner}: conv_cfg=\{{'type': 'ConvWS'\}} cannot apply "
            r'to a shared filter basis and its coefficients; expected None, '
            r'dict\(type="Conv"\) or dict\(type="Conv2d"\)'):
        build(conv_cfg=dict(type='ConvWS'), **kwargs)
    model = build(conv_cfg=dict(type='Conv2d'), **kwargs)
    assert find_shared_bases(model)
