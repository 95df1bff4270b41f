import pytest
import torch

from sharedbasis_mm.layers import TiedBlockConv2d
from sharedbasis_mm.layers import tied


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


def test_auto_runs_the_faster_form_timed_once_per_shape(monkeypatch):
    monkeypatch.setattr(tied, 'FASTEST_TBC_IMPL', {})
    timed = []

    def time_impls(layer, x):
        timed.append(tuple(x.shape))
        return dict(fold=2.0, grouped=1.0) if x.shape[-1] == 8 else dict(
            fold=1.0, grouped=2.0)

    monkeypatch.setattr(TiedBlockConv2d, 'time_impls', time_impls)
    ran = []
    forward_impl = TiedBlockConv2d.forward_impl
    monkeypatch.setattr(
        TiedBlockConv2d, 'forward_impl',
        lambda layer, x, impl: ran.append(impl) or forward_impl(layer, x, impl))
    conv = TiedBlockConv2d(16, 16, 3, padding=1, blocks=4, impl='auto')
    other = TiedBlockConv2d(16, 16, 3, padding=1, blocks=4, impl='auto')
    for layer, size in ((conv, 8), (conv, 8), (other, 8), (conv, 6)):
        layer(torch.randn(2, 16, size, size))
    assert timed == [(2, 16, 8, 8), (2, 16, 6, 6)]
    assert ran == ['grouped', 'grouped', 'grouped', 'fold']
    x_last = torch.randn(2, 16, 8, 8).contiguous(
        memory_format=torch.channels_last)
    conv(x_last)
    assert len(timed) == 3, 'a new layout is timed anew'
    assert TiedBlockConv2d(16, 16, 3, blocks=4,
                           impl='fold').resolve_impl(x_last) == 'fold'
    assert TiedBlockConv2d(16, 16, 3, impl='auto').resolve_impl(x_last) == (
        'fold')
    assert len(timed) == 3
    assert "impl='fold'" in repr(TiedBlockConv2d(16, 16, 3, impl='fold'))


def test_auto_times_both_forms_on_the_input():
    conv = TiedBlockConv2d(16, 16, 3, padding=1, blocks=4, impl='auto')
    x = torch.randn(2, 16, 8, 8, requires_grad=True)
    times = conv.time_impls(x)
    assert set(times) == {'fold', 'grouped'}
    assert all(t > 0 for t in times.values())
    assert conv.resolve_impl(x) in ('fold', 'grouped')


def test_auto_does_not_time_while_exporting(monkeypatch):
    monkeypatch.setattr(tied, 'FASTEST_TBC_IMPL', {})
    monkeypatch.setattr(torch.compiler, 'is_exporting', lambda: True)
    conv = TiedBlockConv2d(16, 16, 3, padding=1, blocks=4, impl='auto')
    assert conv.resolve_impl(torch.randn(1, 16, 8, 8)) == 'fold'
    assert not tied.FASTEST_TBC_IMPL


def test_unknown_impl():
    with pytest.raises(ValueError, match=r"TBC: impl must be one of "
                       r"\('auto', 'fold', 'grouped'\), got impl='im2col'"):
        TiedBlockConv2d(16, 16, 3, blocks=2, impl='im2col')


def test_default_folds_without_timing(monkeypatch):
    monkeypatch.setattr(tied, 'FASTEST_TBC_IMPL', {})
    conv = TiedBlockConv2d(16, 16, 3, padding=1, blocks=4)
    assert conv.impl == 'fold'
    conv(torch.randn(1, 16, 8, 8))
    assert not tied.FASTEST_TBC_IMPL
