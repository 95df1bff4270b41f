import pytest
import torch

from sharedbasis_mm.layers import TiedBlockConv2d
from sharedbasis_mm.layers.tied import auto_impl


def forward_and_grads(conv, x):
    x = x.detach().requires_grad_()
    out = conv(x)
    grads = torch.autograd.grad((out * torch.arange(out.numel()).reshape(
        out.shape).sin()).sum(), [x, *conv.parameters()])
    return out, grads


@pytest.mark.parametrize('memory_format',
                         [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize('blocks,groups,stride,bias', [(2, 1, 1, True),
                                                       (4, 1, 2, False),
                                                       (2, 2, 1, True),
                                                       (8, 1, 1, True)])
def test_fold_and_grouped_forms_agree(memory_format, blocks, groups, stride,
                                      bias):
    torch.manual_seed(0)
    x = torch.randn(2, 32, 9, 9).contiguous(memory_format=memory_format)
    results = {}
    for impl in ('fold', 'grouped', 'auto'):
        torch.manual_seed(1)
        conv = TiedBlockConv2d(32, 16, 3, stride=stride, padding=1,
                               groups=groups, bias=bias, blocks=blocks,
                               impl=impl)
        results[impl] = forward_and_grads(conv, x)
    for impl in ('grouped', 'auto'):
        out, grads = results[impl]
        torch.testing.assert_close(out, results['fold'][0])
        for grad, reference in zip(grads, results['fold'][1]):
            torch.testing.assert_close(grad, reference, rtol=1e-4, atol=1e-4)


def test_auto_folds_nchw_and_groups_channels_last():
    conv = TiedBlockConv2d(16, 16, 3, padding=1, blocks=4)
    x = torch.randn(2, 16, 8, 8)
    assert conv.resolve_impl(x) == 'fold'
    x_last = x.contiguous(memory_format=torch.channels_last)
    assert conv.resolve_impl(x_last) == 'grouped'
    # The grouped form keeps channels_last, the fold returns NCHW.
    assert conv(x_last).is_contiguous(memory_format=torch.channels_last)
    assert conv(x).is_contiguous()
    # A 1 x 1 map is both layouts at once: folding it is a view.
    assert auto_impl(torch.randn(2, 16, 1, 1).contiguous(
        memory_format=torch.channels_last)) == 'fold'
    fixed = TiedBlockConv2d(16, 16, 3, blocks=4, impl='fold')
    assert fixed.resolve_impl(x_last) == 'fold'
    assert "impl='fold'" in repr(fixed)


def test_unknown_impl():
    with pytest.raises(ValueError, match=r"TBC: unknown impl='im2col'; "
                       r"expected one of \('auto', 'fold', 'grouped'\)"):
        TiedBlockConv2d(16, 16, 3, blocks=2, impl='im2col')
