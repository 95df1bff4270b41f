import itertools

import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn import build_conv_layer

from sharedbasis_mm.layers import TiedBlockConv2d, TiedLinear
from reference_checks import assert_gradients


def separate_block_convs(x, weight, bias, blocks, **conv_args):
    """Eq. 3 literally: the same filter on each of the B channel blocks."""
    return torch.cat([
        F.conv2d(xb, weight, bias, **conv_args)
        for xb in x.chunk(blocks, dim=1)
    ], dim=1)


@pytest.mark.parametrize(
    'blocks,stride,padding,dilation,kernel_size',
    [(1, 1, 1, 1, 3), (2, 1, 1, 1, 3), (4, 2, 1, 1, 3), (8, 1, 2, 2, 3),
     (2, 2, 0, 1, 1), (4, 1, 3, 1, 7), (2, 3, 2, 2, 5)])
@pytest.mark.parametrize('bias', [True, False])
def test_tbc_equals_repeated_group_conv_and_separate_convs(
        blocks, stride, padding, dilation, kernel_size, bias):
    torch.manual_seed(0)
    conv = TiedBlockConv2d(32, 16, kernel_size, stride=stride,
                           padding=padding, dilation=dilation, bias=bias,
                           blocks=blocks)
    x = torch.randn(3, 32, 19, 17)
    out = conv(x)
    args = dict(stride=stride, padding=padding, dilation=dilation)
    repeated_bias = conv.bias.repeat(blocks) if bias else None
    grouped = F.conv2d(x, conv.weight.repeat(blocks, 1, 1, 1), repeated_bias,
                       groups=blocks, **args)
    separate = separate_block_convs(x, conv.weight, conv.bias, blocks, **args)
    assert out.shape == grouped.shape
    torch.testing.assert_close(out, grouped, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out, separate, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('blocks,groups', [(1, 2), (2, 2), (4, 2), (2, 4)])
def test_tgc_equals_group_conv_with_repeated_tied_filter(blocks, groups):
    torch.manual_seed(0)
    conv = TiedBlockConv2d(32, 64, 3, padding=1, groups=groups, blocks=blocks)
    x = torch.randn(2, 32, 9, 9)
    out = conv(x)
    # Blocks outermost: B*G groups, the G-group tied filter repeated B times.
    grouped = F.conv2d(x, conv.weight.repeat(blocks, 1, 1, 1),
                       conv.bias.repeat(blocks), padding=1,
                       groups=blocks * groups)
    torch.testing.assert_close(out, grouped, rtol=1e-5, atol=1e-5)
    # Eq. 4 inside each block: a G-group convolution with the tied filter.
    separate = torch.cat([
        F.conv2d(xb, conv.weight, conv.bias, padding=1, groups=groups)
        for xb in x.chunk(blocks, dim=1)
    ], dim=1)
    torch.testing.assert_close(out, separate, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('blocks', [1, 2, 4, 8])
def test_tfc_equals_blockwise_linear(blocks):
    torch.manual_seed(0)
    fc = TiedLinear(64, 32, blocks=blocks)
    x = torch.randn(5, 64)
    expected = torch.cat([
        F.linear(xb, fc.weight, fc.bias) for xb in x.chunk(blocks, dim=1)
    ], dim=1)
    torch.testing.assert_close(fc(x), expected, rtol=1e-5, atol=1e-5)
    assert fc(torch.randn(2, 3, 64)).shape == (2, 3, 32)


@pytest.mark.parametrize('blocks,kernel_size,bias',
                         itertools.product([1, 2, 4, 8], [1, 3], [True, False]))
def test_tied_parameter_counts(blocks, kernel_size, bias):
    conv = TiedBlockConv2d(64, 128, kernel_size, bias=bias, blocks=blocks)
    expected = (128 // blocks) * (64 // blocks) * kernel_size**2
    expected += 128 // blocks if bias else 0
    assert sum(p.numel() for p in conv.parameters()) == expected
    fc = TiedLinear(64, 128, bias=bias, blocks=blocks)
    expected_fc = (128 // blocks) * (64 // blocks) + (128 // blocks
                                                      if bias else 0)
    assert sum(p.numel() for p in fc.parameters()) == expected_fc


def test_gradients_reach_the_one_tied_weight():
    torch.manual_seed(0)
    conv = TiedBlockConv2d(16, 16, 3, padding=1, blocks=4)
    x = torch.randn(2, 16, 8, 8, requires_grad=True)
    conv(x).square().sum().backward()
    params = list(conv.parameters())
    assert len(params) == 2 and params[0] is conv.weight
    # against float64 autograd, itself checked by finite differences
    assert_gradients(conv, lambda m, x: m(x).square().sum(), [x],
                     params=[conv.weight])
    # The tied weight's gradient is the sum of the B per-block gradients.
    grouped_weight = conv.weight.detach().repeat(4, 1, 1, 1).requires_grad_()
    F.conv2d(x.detach(), grouped_weight, conv.bias.detach().repeat(4),
             padding=1, groups=4).square().sum().backward()
    torch.testing.assert_close(conv.weight.grad,
                               grouped_weight.grad.view(4, 4, 4, 3, 3).sum(0),
                               rtol=1e-4, atol=1e-4)


def test_tbc_built_through_mmcv_conv_cfg():
    import sharedbasis_mm  # noqa: F401
    conv = build_conv_layer(dict(type='TBC', blocks=2), 64, 64, 3, padding=1)
    assert isinstance(conv, TiedBlockConv2d) and conv.blocks == 2
    assert conv(torch.randn(1, 64, 8, 8)).shape == (1, 64, 8, 8)
    tgc = build_conv_layer(dict(type='TGC', blocks=2), 64, 64, 3, padding=1,
                           groups=4)
    assert tgc.groups == 4 and tgc.weight.shape == (32, 8, 3, 3)


def test_channels_last_input():
    conv = TiedBlockConv2d(16, 16, 3, padding=1, blocks=4)
    x = torch.randn(2, 16, 8, 8)
    torch.testing.assert_close(
        conv(x.contiguous(memory_format=torch.channels_last)), conv(x))


@pytest.mark.parametrize('kwargs,match', [
    (dict(in_channels=30, out_channels=32, blocks=4), 'in_channels=30 must be '
     'divisible by blocks \\* groups=4'),
    (dict(in_channels=32, out_channels=30, blocks=4), 'out_channels=30'),
    (dict(in_channels=32, out_channels=32, blocks=0), 'blocks must be a '
     'positive integer, got blocks=0'),
    (dict(in_channels=32, out_channels=32, blocks=2, groups=32),
     'in_channels=32 must be divisible by blocks \\* groups=64'),
])
def test_tbc_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TiedBlockConv2d(kernel_size=3, **kwargs)


def test_tied_bad_runtime_input():
    with pytest.raises(ValueError, match='in_channels=16 channels, got 8'):
        TiedBlockConv2d(16, 16, 3, blocks=2)(torch.randn(1, 8, 5, 5))
    with pytest.raises(ValueError, match='in_features=8'):
        TiedLinear(8, 8, blocks=2)(torch.randn(1, 6))
    with pytest.raises(ValueError, match='in_features=10 must be divisible '
                       'by blocks=4'):
        TiedLinear(10, 8, blocks=4)
