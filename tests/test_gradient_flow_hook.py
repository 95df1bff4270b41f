import glob
import os.path as osp

import numpy as np
import pytest
import torch
from matplotlib.container import BarContainer
from PIL import Image

from sharedbasis_mm.analysis import plot_gradient_flow
from sharedbasis_mm.hooks import GradientFlowHook
from sharedbasis_mm.registry import HOOKS
from tiny_shared_basis_net import (PlainNet, TinySharedBasisNet, build_runner,
                                   cpu_amp_optim_wrapper, logged_scalars,
                                   text_log)

BASES = ['blocks.0.basis.shared_basis', 'blocks.2.basis.shared_basis']


def assert_png_shows_a_plot(path: str) -> None:
    with Image.open(path) as image:
        assert image.format == 'PNG'
        pixels = np.asarray(image.convert('L'))
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels.std() > 10  # not a blank canvas


def test_registered_and_arguments_checked():
    hook = HOOKS.build(dict(type='GradientFlowHook', interval=3))
    assert isinstance(hook, GradientFlowHook) and hook.interval == 3
    with pytest.raises(ValueError, match='interval=0'):
        GradientFlowHook(interval=0)


def test_plot_gradient_flow_draws_overlapped_bars():
    max_grads = np.array([[0.3, 0.1], [0.2, 0.4], [0.1, 0.2]])
    figure = plot_gradient_flow(['a', 'b'], max_grads, max_grads / 10)
    axes, = figure.axes
    bars = [c for c in axes.containers if isinstance(c, BarContainer)]
    assert len(bars) == 2 * 3  # a max and a mean bar set per record
    heights = np.array([[patch.get_height() for patch in c] for c in bars])
    np.testing.assert_allclose(heights[0::2], max_grads)
    np.testing.assert_allclose(heights[1::2], max_grads / 10)
    assert [t.get_text() for t in axes.get_xticklabels()] == ['a', 'b']
    with pytest.raises(ValueError, match='max_grads'):
        plot_gradient_flow(['a', 'b', 'c'], max_grads, max_grads)
    with pytest.raises(ValueError, match='mean_grads'):
        plot_gradient_flow(['a', 'b'], max_grads, max_grads[:2])


def test_records_logs_and_plots_each_epoch(tmp_path):
    """Two epochs of 4 iterations, recording every 2: the logged maximum and
    mean are those of the basis gradients of iterations 2, 4, 6, 8, and one
    plot per epoch is written."""
    torch.manual_seed(0)
    model = TinySharedBasisNet(num_blocks=2, num_groups=2)
    runner = build_runner(
        model,
        str(tmp_path), [dict(type='GradientFlowHook', interval=2)],
        train_cfg=dict(by_epoch=True, max_epochs=2),
        num_samples=16)
    bases = [model.blocks[0].shared_basis, model.blocks[2].shared_basis]
    grads = {name: [] for name in BASES}
    for name, basis in zip(BASES, bases):
        basis.register_hook(
            lambda grad, name=name: grads[name].append(grad.abs()))
    runner.train()

    scalars = logged_scalars(runner)
    for name in BASES:
        assert len(grads[name]) == 8
        for statistic in ('max', 'mean'):
            logged = scalars[f'grad_flow/{name}/{statistic}']
            assert [step for step, _ in logged] == [2, 4, 6, 8]
            expected = [
                getattr(grads[name][step - 1], statistic)().item()
                for step, _ in logged
            ]
            np.testing.assert_allclose([v for _, v in logged], expected,
                                       rtol=1e-6)
    plots = sorted(glob.glob(osp.join(runner.log_dir, 'gradient_flow', '*')))
    assert [osp.basename(p) for p in plots] == ['epoch_1.png', 'epoch_2.png']
    for path in plots:
        assert_png_shows_a_plot(path)


def test_accumulation_records_only_optimizer_steps(tmp_path):
    """With ``accumulative_counts=2`` the gradient is recorded when the
    optimizer steps, summed over the two backward passes, and plotted once
    at the end of an iteration-based run into ``out_dir``; the hook leaves
    no step hook on the optimizer."""
    torch.manual_seed(0)
    model = TinySharedBasisNet()
    runner = build_runner(
        model,
        str(tmp_path), [
            dict(
                type='GradientFlowHook',
                interval=1,
                out_dir=str(tmp_path / 'plots'))
        ],
        max_iters=4,
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=0.1), accumulative_counts=2))
    grads = []
    model.blocks[0].shared_basis.register_hook(grads.append)
    runner.train()
    logged = logged_scalars(runner)[f'grad_flow/{BASES[0]}/max']
    assert [step for step, _ in logged] == [2, 4]
    for step, value in logged:
        accumulated = grads[step - 2] + grads[step - 1]
        assert value == pytest.approx(accumulated.abs().max().item(),
                                      rel=1e-5)
    plot, = glob.glob(str(tmp_path / '**' / '*.png'), recursive=True)
    assert plot == str(tmp_path / 'plots' / 'epoch_1.png')
    assert_png_shows_a_plot(plot)
    assert not runner.optim_wrapper.optimizer._optimizer_step_pre_hooks


def test_amp_records_unscaled_gradients(tmp_path, monkeypatch):
    """Under mixed precision with a loss scale of 256, the recorded
    gradient is the gradient the optimizer applies: unscaled."""
    torch.manual_seed(0)
    model = TinySharedBasisNet()
    optim_wrapper = cpu_amp_optim_wrapper(
        torch.optim.SGD(model.parameters(), lr=0.1), monkeypatch, 256.)
    runner = build_runner(
        model,
        str(tmp_path), [dict(type='GradientFlowHook', interval=1)],
        max_iters=2,
        optim_wrapper=optim_wrapper)
    grads = []
    model.blocks[0].shared_basis.register_hook(grads.append)
    runner.train()
    logged = logged_scalars(runner)[f'grad_flow/{BASES[0]}/mean']
    assert [step for step, _ in logged] == [1, 2]
    for (_, value), scaled in zip(logged, grads):
        assert value == pytest.approx(
            scaled.abs().mean().item() / 256, rel=1e-5)


def test_no_shared_basis_warns_and_records_nothing(tmp_path):
    runner = build_runner(PlainNet(), str(tmp_path),
                          [dict(type='GradientFlowHook', interval=1)],
                          max_iters=2)
    runner.train()
    assert text_log(runner).count('has no shared filter basis') == 1
    assert not any(key.startswith('grad_flow')
                   for key in logged_scalars(runner))
    assert not osp.exists(osp.join(runner.log_dir, 'gradient_flow'))
