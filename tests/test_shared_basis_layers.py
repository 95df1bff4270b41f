import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_conv_layer
from mmengine.runner import load_checkpoint, save_checkpoint

from sharedbasis_mm import fuse_shared_basis
from sharedbasis_mm.layers import (BasisConv2d, FilterBasis,
                                   SharedBasisConv2d, find_basis_users,
                                   find_shared_bases, orthogonality_error)


class TwoLayers(nn.Module):
    """Two shared-basis convolutions on one basis, as two blocks of a group."""

    def __init__(self, channels=8, shared=6, unique=2):
        super().__init__()
        self.basis = FilterBasis(channels, shared, 3)
        self.conv1 = SharedBasisConv2d(channels, channels, 3, padding=1,
                                       rank=shared + unique,
                                       unique_rank=unique,
                                       shared_basis=self.basis)
        self.conv2 = SharedBasisConv2d(channels, channels, 3, padding=1,
                                       rank=shared + unique,
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
    layer = SharedBasisConv2d(16, 24, 3, stride=2, padding=1, rank=10,
                              unique_rank=2, norm_cfg=None)
    x = torch.randn(2, 16, 15, 15)
    basis = torch.cat([layer.shared_basis.weight, layer.basis.unique_weight])
    alpha = layer.coefficients.weight[:, :, 0, 0]  # (T, R)
    filters = torch.einsum('tr,rskl->tskl', alpha, basis)  # eq. 1
    expected = F.conv2d(x, filters, stride=2, padding=1)
    torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-5)

    # The same with a BN set to identity (eval mode, unit statistics).
    with_bn = SharedBasisConv2d(16, 24, 3, stride=2, padding=1, rank=10,
                                unique_rank=2).eval()
    with_bn.load_state_dict(layer.state_dict(), strict=False)
    torch.testing.assert_close(with_bn(x), expected, rtol=1e-4, atol=1e-4)


def test_basis_conv_concatenates_shared_then_unique_elements():
    torch.manual_seed(0)
    basis = FilterBasis(4, 3, 3)
    conv = BasisConv2d(4, 5, 3, padding=1, unique_rank=2, shared_basis=basis)
    x = torch.randn(1, 4, 6, 6)
    out = conv(x)
    assert out.shape == (1, 5, 6, 6)
    torch.testing.assert_close(out[:, :3], F.conv2d(x, basis.weight,
                                                    padding=1))
    torch.testing.assert_close(out[:, 3:],
                               F.conv2d(x, conv.unique_weight, padding=1))


def test_shared_elements_are_orthonormal_at_init():
    basis = FilterBasis(16, 48, 3)
    assert orthogonality_error(basis.weight) < 1e-8
    # More elements than dimensions: the rows are orthonormal instead.
    wide = FilterBasis(4, 24, 1)
    assert orthogonality_error(wide.weight) < 1e-8


def test_layers_on_one_basis_share_one_parameter(tmp_path):
    model = TwoLayers()
    assert model.conv1.shared_basis is model.conv2.shared_basis
    assert (model.conv1.shared_basis.weight is
            model.conv2.shared_basis.weight)
    params = list(model.parameters())
    assert sum(p is model.basis.weight for p in params) == 1

    torch.manual_seed(1)
    trained = TwoLayers()
    save_checkpoint(trained.state_dict(), str(tmp_path / 'ckpt.pth'))
    weight = model.basis.weight
    load_checkpoint(model, str(tmp_path / 'ckpt.pth'))
    assert model.conv1.shared_basis.weight is weight
    assert model.conv2.shared_basis.weight is weight
    torch.testing.assert_close(weight, trained.basis.weight)

    clone = copy.deepcopy(model)
    assert clone.conv1.shared_basis is clone.conv2.shared_basis
    assert clone.basis.weight is not model.basis.weight


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
                              bias=True, rank=12, unique_rank=3)
    randomize_norm(layer.norm)
    layer.eval()
    fused = layer.fuse()
    assert type(fused) is nn.Conv2d and fused.bias is not None
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
    assert not kinds & {SharedBasisConv2d, BasisConv2d, FilterBasis}
    rel = (model(x) - expected).norm() / expected.norm()
    assert rel < 1e-4


def test_fusion_needs_batch_norm_statistics():
    layer = SharedBasisConv2d(4, 4, 3, rank=2,
                              norm_cfg=dict(type='GN', num_groups=1))
    with pytest.raises(TypeError, match='only a BatchNorm folds'):
        layer.fuse()


def test_built_through_mmcv_conv_cfg():
    import sharedbasis_mm  # noqa: F401
    basis = FilterBasis(64, 48, 3)
    conv = build_conv_layer(
        dict(type='SharedBasisConv', rank=49, unique_rank=1,
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
    (dict(rank=4, unique_rank=1, shared_basis=FilterBasis(8, 3, 1)),
     ValueError, r'kernel_size=\(3, 3\) differs from the shared basis'),
    (dict(rank=4, unique_rank=1, shared_basis=FilterBasis(16, 3, 3)),
     ValueError, 'in_channels=8 differs from the shared basis'),
    (dict(rank=4, unique_rank=2, shared_basis=FilterBasis(8, 3, 3)),
     ValueError, r'rank - unique_rank=2 shared elements expected, but the '
     'shared basis has num_elements=3'),
    (dict(rank=4, shared_basis=nn.Conv2d(8, 4, 3)), TypeError,
     'shared_basis must be a FilterBasis'),
])
def test_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        SharedBasisConv2d(8, 8, 3, **kwargs)


def test_unique_only_and_shared_only_layers():
    unique_only = SharedBasisConv2d(8, 8, 3, rank=4, unique_rank=4)
    assert unique_only.shared_basis is None
    assert unique_only(torch.randn(1, 8, 5, 5)).shape == (1, 8, 3, 3)
    shared_only = SharedBasisConv2d(8, 8, 3, rank=4)
    assert shared_only.basis.unique_weight is None
    assert shared_only.shared_basis.num_elements == 4
