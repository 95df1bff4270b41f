import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_conv_layer
from mmengine.runner import load_checkpoint, save_checkpoint

from sharedbasis_mm import fuse_shared_basis
from sharedbasis_mm.layers import (BasisConv2d, SharedBasisConv2d,
                                   find_basis_users, find_shared_bases,
                                   fuse_model, make_filter_basis,
                                   orthogonality_error)


class TwoLayers(nn.Module):
    """Two shared-basis convolutions on one basis, as two blocks of a group
    that owns the basis."""

    def __init__(self, channels=8, shared=6, unique=2):
        super().__init__()
        self.basis = make_filter_basis(channels, shared, 3)
        self.conv1 = SharedBasisConv2d(channels, channels, 3, padding=1,
                                       shared_rank=shared,
                                       unique_rank=unique,
                                       shared_basis=self.basis)
        self.conv2 = SharedBasisConv2d(channels, channels, 3, padding=1,
                                       shared_rank=shared,
                                       unique_rank=unique,
                                       shared_basis=self.basis)

    def forward(self, x):
        return self.conv2(torch.relu(self.conv1(x)))


def randomize_norm(norm):
    norm.running_mean.uniform_(-1, 1)
    norm.running_var.uniform_(0.5, 2)
    norm.weight.data.uniform_(0.5, 1.5)
    norm.bias.data.uniform_(-0.5, 0.5)


def test_identity_norm_equals_conv_with_reconstructed_filters():
    torch.manual_seed(0)
    layer = SharedBasisConv2d(16, 24, 3, stride=2, padding=1, shared_rank=8,
                              unique_rank=2, norm_cfg=None)
    x = torch.randn(2, 16, 15, 15)
    basis = torch.cat([layer.shared_basis, layer.basis.unique_weight])
    alpha = layer.coefficients.weight[:, :, 0, 0]  # (T, R)
    filters = torch.einsum('tr,rskl->tskl', alpha, basis)  # eq. 1
    expected = F.conv2d(x, filters, stride=2, padding=1)
    torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-5)

    # The same with a BN set to identity (eval mode, unit statistics).
    with_bn = SharedBasisConv2d(16, 24, 3, stride=2, padding=1, shared_rank=8,
                                unique_rank=2).eval()
    with_bn.load_state_dict(layer.state_dict(), strict=False)
    torch.testing.assert_close(with_bn(x), expected, rtol=1e-4, atol=1e-4)


def test_basis_conv_concatenates_shared_then_unique_elements():
    torch.manual_seed(0)
    basis = make_filter_basis(4, 3, 3)
    conv = BasisConv2d(4, 5, 3, padding=1, unique_rank=2, shared_basis=basis)
    x = torch.randn(1, 4, 6, 6)
    out = conv(x)
    assert out.shape == (1, 5, 6, 6)
    torch.testing.assert_close(out[:, :3], F.conv2d(x, basis,
                                                    padding=1))
    torch.testing.assert_close(out[:, 3:],
                               F.conv2d(x, conv.unique_weight, padding=1))


def test_shared_elements_are_orthonormal_at_init():
    basis = make_filter_basis(16, 48, 3)
    assert orthogonality_error(basis) < 1e-8
    # More elements than dimensions: the rows are orthonormal instead.
    wide = make_filter_basis(4, 24, 1)
    assert orthogonality_error(wide) < 1e-8


def test_layers_on_one_basis_share_one_parameter(tmp_path):
    model = TwoLayers()
    assert model.conv1.shared_basis is model.conv2.shared_basis
    assert model.conv1.shared_basis is model.basis
    params = list(model.parameters())
    assert sum(p is model.basis for p in params) == 1
    # One key: the owner's; the layers given the basis do not store it.
    assert [k for k in model.state_dict()
            if k.endswith('shared_basis') or k == 'basis'] == ['basis']

    torch.manual_seed(1)
    trained = TwoLayers()
    save_checkpoint(trained.state_dict(), str(tmp_path / 'ckpt.pth'))
    weight = model.basis
    load_checkpoint(model, str(tmp_path / 'ckpt.pth'), strict=True)
    assert model.conv1.shared_basis is weight
    assert model.conv2.shared_basis is weight
    torch.testing.assert_close(weight, trained.basis)

    clone = copy.deepcopy(model)
    assert clone.conv1.shared_basis is clone.conv2.shared_basis
    assert clone.conv1.shared_basis is clone.basis
    assert clone.basis is not model.basis

    # Conversions change the one Parameter in place, for every user.
    model.double()
    assert model.conv1.shared_basis is weight and weight.dtype == torch.float64
    assert model(torch.randn(1, 8, 5, 5, dtype=torch.float64)).dtype == (
        torch.float64)


def test_finders():
    model = nn.Sequential(TwoLayers(), TwoLayers(), nn.Conv2d(8, 8, 1))
    bases = find_shared_bases(model)
    assert list(bases) == ['0.basis', '1.basis']
    assert bases['0.basis'] is model[0].basis
    assert find_basis_users(model) == {
        '0.basis': ['0.conv1.basis', '0.conv2.basis'],
        '1.basis': ['1.conv1.basis', '1.conv2.basis'],
    }
    assert find_shared_bases(nn.Conv2d(3, 3, 1)) == {}
    # A layer taken out of the module owning its basis: named after it.
    assert find_shared_bases(model[0].conv1) == {
        'basis.shared_basis': model[0].basis
    }
    # A layer that created its basis owns it.
    conv = BasisConv2d(8, 4, 3, unique_rank=1)
    assert list(conv.state_dict()) == ['shared_basis', 'unique_weight']
    assert find_shared_bases(conv) == {'shared_basis': conv.shared_basis}


def test_orthogonality_error_values():
    assert orthogonality_error(torch.eye(5)) == 0
    q, _ = torch.linalg.qr(torch.randn(18, 4))
    assert orthogonality_error(q.t().reshape(4, 2, 3, 3)) < 1e-10
    # W^T = [[1, 1], [0, 2]] as two 2-dimensional elements (rows here):
    # Gram = [[2, 2], [2, 4]], Gram - I = [[1, 2], [2, 3]].
    w = torch.tensor([[1., 1.], [0., 2.]])
    assert orthogonality_error(w) == pytest.approx(1 + 4 + 4 + 9)
    assert orthogonality_error(w, 'mean') == pytest.approx(18 / 4)
    with pytest.raises(ValueError, match="reduction=.max."):
        orthogonality_error(w, 'max')


def test_fused_layer_equals_unfused_in_eval_mode():
    torch.manual_seed(0)
    layer = SharedBasisConv2d(16, 32, 3, stride=2, padding=2, dilation=2,
                              bias=True, shared_rank=9, unique_rank=3)
    randomize_norm(layer.norm)
    layer.eval()
    fused = layer.fuse()
    # its bias: the layer's output for a zero input (the folded norm's shift
    # through the coefficients, plus their bias)
    assert type(fused) is nn.Conv2d
    torch.testing.assert_close(
        fused.bias, layer(torch.zeros(1, 16, 1, 1)).flatten(), rtol=1e-5,
        atol=1e-6)
    x = torch.randn(2, 16, 17, 17)
    expected = layer(x)
    torch.testing.assert_close(fused(x), expected, rtol=1e-4, atol=1e-4)
    rel = (fused(x) - expected).norm() / expected.norm()
    assert rel < 1e-4


def test_model_level_fusion_removes_every_shared_basis_layer():
    torch.manual_seed(0)
    model = nn.Sequential(TwoLayers(), nn.ReLU(),
                          BasisConv2d(8, 4, 1, unique_rank=1))
    for layer in (model[0].conv1, model[0].conv2):
        randomize_norm(layer.norm)
    model.eval()
    x = torch.randn(2, 8, 10, 10)
    expected = model(x)
    fuse_shared_basis(model)
    kinds = {type(m) for m in model.modules()}
    assert not kinds & {SharedBasisConv2d, BasisConv2d}
    assert not find_shared_bases(model)
    assert not [k for k in model.state_dict() if 'basis' in k]
    rel = (model(x) - expected).norm() / expected.norm()
    assert rel < 1e-4


def test_fusion_needs_batch_norm_statistics():
    layer = SharedBasisConv2d(4, 4, 3, shared_rank=2,
                              norm_cfg=dict(type='GN', num_groups=1))
    with pytest.raises(TypeError, match='only a BatchNorm folds'):
        layer.fuse()


def test_built_through_mmcv_conv_cfg():
    import sharedbasis_mm  # noqa: F401
    basis = make_filter_basis(64, 48, 3)
    conv = build_conv_layer(
        dict(type='SharedBasisConv', shared_rank=48, unique_rank=1,
             shared_basis=basis), 64, 64, 3, padding=1, bias=False)
    assert conv.shared_basis is basis and conv.rank == 49
    assert conv(torch.randn(1, 64, 8, 8)).shape == (1, 64, 8, 8)


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(rank=0), ValueError, r'rank must be a positive integer, got '
     r'rank=0'),
    (dict(rank=True), TypeError, r'rank must be a positive integer, got '
     r'rank=True'),
    (dict(rank=4, unique_rank=5), ValueError,
     r'unique_rank must be an integer >= 0 and <= 4, got unique_rank=5'),
    (dict(rank=4, groups='1'), TypeError, "groups='1'"),
    (dict(rank=4, unique_rank=1, shared_basis=make_filter_basis(8, 3, 1)),
     ValueError, r'kernel_size=\(3, 3\) differs from the shared basis'),
    (dict(rank=4, unique_rank=1, shared_basis=make_filter_basis(16, 3, 3)),
     ValueError, 'in_channels=8 differs from the shared basis'),
    (dict(rank=4, unique_rank=2, shared_basis=make_filter_basis(8, 3, 3)),
     ValueError, r'shared_rank=2 shared elements expected \(rank - '
     r'unique_rank\), but the shared basis has 3 elements'),
    (dict(shared_rank=0), ValueError, r'shared_rank must be a positive '
     r'integer, got shared_rank=0'),
    (dict(shared_rank=-1, unique_rank=1), ValueError,
     r'shared_rank must be an integer >= 0, got shared_rank=-1'),
    (dict(unique_rank=1), ValueError, 'shared_rank is required without a '
     'shared_basis'),
    (dict(shared_rank=3, unique_rank=2, shared_basis=make_filter_basis(8, 4,
                                                                       3)),
     ValueError, r'shared_rank=3 shared elements expected'),
    (dict(shared_rank=4, unique_rank=1, norm_cfg=dict(type='GN',
                                                      num_groups=2)),
     ValueError, r"SharedBasisConv2d: shared_rank \+ unique_rank=5 basis "
     r"responses cannot be split into the num_groups=2 groups of the norm "
     r"after the basis"),
    (dict(rank=4, shared_basis=nn.Conv2d(8, 4, 3)), TypeError,
     r'shared_basis must be an nn.Parameter of shape \(n, in_channels, k, '
     r'k\)'),
    (dict(rank=4, conv_cfg=dict(type='ConvWS')), ValueError,
     r"SharedBasisConv2d: conv_cfg=\{'type': 'ConvWS'\} cannot apply to a "
     r'shared filter basis and its coefficients; expected None, '
     r'dict\(type="Conv"\) or dict\(type="Conv2d"\)'),
])
def test_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        SharedBasisConv2d(8, 8, 3, **kwargs)


def test_unique_only_and_shared_only_layers():
    unique_only = SharedBasisConv2d(8, 8, 3, shared_rank=0, unique_rank=4)
    assert unique_only.shared_basis is None
    assert unique_only(torch.randn(1, 8, 5, 5)).shape == (1, 8, 3, 3)
    shared_only = SharedBasisConv2d(8, 8, 3, shared_rank=4)
    assert shared_only.basis.unique_weight is None
    assert shared_only.shared_basis.shape == (4, 8, 3, 3)


def test_shared_basis_conv_as_conv_module_conv_cfg():
    """mmcv's ConvModule builds, initialises, runs and fuses a conv_cfg of
    type SharedBasisConv, its own norm and activation included."""
    torch.manual_seed(0)
    module = ConvModule(
        8, 16, 3, stride=2, padding=1,
        conv_cfg=dict(type='SharedBasisConv', shared_rank=4, unique_rank=2),
        norm_cfg=dict(type='BN'))
    assert isinstance(module.conv, SharedBasisConv2d)
    conv = module.conv
    assert (conv.kernel_size, conv.stride, conv.padding, conv.dilation,
            conv.groups, conv.transposed, conv.output_padding) == (
                (3, 3), (2, 2), (1, 1), (1, 1), 1, False, (0, 0))
    assert (module.kernel_size, module.stride, module.groups) == (
        (3, 3), (2, 2), 1)
    # bias='auto' with a norm: the coefficients have no bias.
    assert module.conv.coefficients.bias is None
    # ConvModule.init_weights does not Kaiming-initialise the elements: they
    # stay orthogonal, as the layer's own init_weights makes them.
    module.init_weights()
    assert orthogonality_error(module.conv.shared_basis) < 1e-8
    assert orthogonality_error(module.conv.basis.unique_weight) < 1e-8
    with torch.no_grad():
        module.conv.shared_basis.mul_(3)
    module.conv.init_weights()
    assert orthogonality_error(module.conv.shared_basis) < 1e-8
    # Nor a bare basis, whose weight is the shared Parameter itself.
    bare = ConvModule(8, 4, 3, conv_cfg=dict(type='BasisConv'),
                      norm_cfg=dict(type='BN'))
    bare.init_weights()
    assert orthogonality_error(bare.conv.weight) < 1e-8
    # both norms (the basis's and ConvModule's) as after training
    randomize_norm(module.conv.norm)
    randomize_norm(module.bn)
    module.eval()
    x = torch.randn(2, 8, 9, 9)
    expected = module(x)
    # conv, norm, then the ReLU, which zeroes the negative outputs
    before_relu = module.bn(module.conv(x))
    assert expected.shape == (2, 16, 5, 5)
    assert torch.equal(expected, before_relu.clamp(min=0))
    assert torch.count_nonzero(expected == 0) == torch.count_nonzero(
        before_relu <= 0) > 0
    fused = fuse_model(copy.deepcopy(module))
    assert type(fused.conv) is nn.Conv2d and isinstance(fused.bn, nn.Identity)
    torch.testing.assert_close(fused(x), expected, rtol=1e-4, atol=1e-5)


def test_unique_elements_follow_the_dtype_of_a_given_basis():
    basis = nn.Parameter(make_filter_basis(8, 3, 3).detach().double())
    conv = BasisConv2d(8, 4, 3, padding=1, unique_rank=1, shared_basis=basis)
    assert conv.unique_weight.dtype == torch.float64
    x = torch.randn(1, 8, 5, 5, dtype=torch.float64)
    weight = torch.cat([basis, conv.unique_weight])
    torch.testing.assert_close(conv(x), F.conv2d(x, weight, padding=1))


@pytest.mark.parametrize('conv_cfg,groups', [
    (dict(type='BasisConv'), 2),
    (dict(type='SharedBasisConv', shared_rank=3, unique_rank=1), 1),
    (dict(type='TBC', blocks=2), 2),
])
def test_conv_module_reads_the_geometry_of_every_layer(conv_cfg, groups):
    """The attributes ConvModule copies from its conv are those of
    nn.Conv2d with the same arguments (ConvModuleAttributes)."""
    import sharedbasis_mm  # noqa: F401
    args = dict(stride=2, padding=2, dilation=2, groups=groups)
    if conv_cfg['type'] == 'SharedBasisConv':
        args.pop('groups')
    norm_cfg = dict(type='BN')
    module = ConvModule(8, 4, 3, conv_cfg=conv_cfg, norm_cfg=norm_cfg, **args)
    reference = ConvModule(8, 4, 3, norm_cfg=norm_cfg, **args)
    for name in ('in_channels', 'out_channels', 'kernel_size', 'stride',
                 'padding', 'dilation', 'groups', 'transposed',
                 'output_padding'):
        assert getattr(module.conv, name) == getattr(reference.conv,
                                                     name), name
        assert getattr(module, name) == getattr(reference, name), name
    assert module(torch.randn(2, 8, 9, 9)).shape == reference(
        torch.randn(2, 8, 9, 9)).shape == (2, 4, 5, 5)


def test_deprecated_rank_is_shared_plus_unique_rank():
    with pytest.warns(FutureWarning, match=r'`SharedBasisConv2d\(rank=R\)` is '
                      r'deprecated; use `shared_rank=R - unique_rank`'):
        old = SharedBasisConv2d(8, 8, 3, rank=6, unique_rank=2)
    new = SharedBasisConv2d(8, 8, 3, shared_rank=4, unique_rank=2)
    assert (old.rank, old.basis.shared_rank) == (new.rank, 4) == (6, 4)
    assert {k: v.shape for k, v in old.state_dict().items()} == {
        k: v.shape for k, v in new.state_dict().items()}
