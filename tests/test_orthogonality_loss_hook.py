import copy
import json
import math
import os
import os.path as osp
import re
import sys

import pytest
import torch
from mmdet.registry import MODELS as DET_MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS as PRETRAIN_MODELS
from mmpretrain.structures import DataSample

from process_group import run_process_group
from sharedbasis_mm.analysis import build_model_from_config
from sharedbasis_mm.hooks import OrthogonalityLossHook
from sharedbasis_mm.layers import (SharedBasisConv2d, find_shared_bases,
                                   orthogonality_error)
from sharedbasis_mm.registry import HOOKS
from orthogonality_reference import CASES, REFERENCE, train_case
from tiny_shared_basis_net import (PlainNet, TinySharedBasisNet, build_runner,
                                   cpu_amp_optim_wrapper, logged_scalars,
                                   perturb_bases, text_log)

BASIS = 'blocks.0.basis.shared_basis'
LOSS_SCALE = 256.
HERE = osp.dirname(osp.abspath(__file__))
CONFIGS = osp.join(osp.dirname(HERE), 'configs')


def tiny_net(perturbed: bool = False) -> TinySharedBasisNet:
    """The tiny net, with its basis moved away from orthogonal if
    ``perturbed`` (orthogonality error > 1)."""
    torch.manual_seed(0)
    model = TinySharedBasisNet()
    return perturb_bases(model) if perturbed else model


def test_registered_and_arguments_checked():
    hook = HOOKS.build(
        dict(type='OrthogonalityLossHook', loss_weight=1, reduction='sum'))
    assert isinstance(hook, OrthogonalityLossHook)
    assert (hook.loss_weight, hook.reduction) == (1., 'sum')
    with pytest.raises(ValueError, match='loss_weight'):
        OrthogonalityLossHook(loss_weight=-1)
    with pytest.raises(ValueError, match="reduction='max'"):
        OrthogonalityLossHook(reduction='max')
    with pytest.raises(ValueError, match='log_interval=0'):
        OrthogonalityLossHook(log_interval=0)


def test_regularization_drives_bases_orthogonal(tmp_path):
    """Trained for 30 iterations from a basis far from orthogonal, the error
    with the hook ends under a tenth of the error without it; ``loss_orth``
    and the per-basis error are logged, and the model is left as found."""
    model = tiny_net(perturbed=True)
    initial_error = orthogonality_error(
        model.blocks[0].shared_basis).item()
    errors, scalars = {}, {}
    for name, hooks in [('without', []),
                        ('with', [dict(type='OrthogonalityLossHook',
                                       log_interval=5)])]:
        trained = copy.deepcopy(model)
        runner = build_runner(
            trained, str(tmp_path / name), hooks, max_iters=30)
        runner.train()
        errors[name] = orthogonality_error(
            trained.blocks[0].shared_basis).item()
        scalars[name] = logged_scalars(runner)
        assert 'parse_losses' not in vars(trained)
        assert not trained._forward_hooks
    assert initial_error > 1
    assert errors['without'] > 0.5 * initial_error
    assert errors['with'] < 0.1 * errors['without']

    assert 'loss_orth' not in scalars['without']
    loss_orth = dict(scalars['with']['loss_orth'])
    assert sorted(loss_orth) == list(range(1, 31))
    # The error of the basis (mean reduction) every log_interval
    # iterations; loss_orth is lambda = 10 times it.
    orth_errors = scalars['with'][f'orth_error/{BASIS}']
    assert [step for step, _ in orth_errors] == [5, 10, 15, 20, 25, 30]
    for step, error in orth_errors:
        assert loss_orth[step] == pytest.approx(10 * error, rel=1e-5)
    assert orth_errors[-1][1] < 0.1 * orth_errors[0][1]
    # the text log's 4 decimals show the error through its logarithm
    log10_errors = dict(scalars['with']['log10_orth_error'])
    for step, value in loss_orth.items():
        assert log10_errors[step] == pytest.approx(
            math.log10(value / 10), abs=1e-5)
    assert re.search(r'log10_orth_error: -?\d+\.\d{4}', text_log(runner))


def train_with_hook(model, work_dir: str, dataset: list, scope: str) -> dict:
    """Train ``model`` for 2 iterations of batch 2 in ``scope`` with the hook
    logging the error of every basis at every iteration; the logged
    scalars."""
    runner = build_runner(
        model,
        work_dir,
        [dict(type='OrthogonalityLossHook', log_interval=1)],
        max_iters=2,
        dataset=dataset,
        batch_size=2,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_scope=scope)
    runner.train()
    return logged_scalars(runner)


def assert_loss_orth_sums_all_bases(scalars: dict, bases: list) -> None:
    """``loss_orth`` = 10 * the sum of the errors logged for ``bases``."""
    logged = sorted(key.split('/', 1)[1] for key in scalars
                    if key.startswith('orth_error/'))
    assert logged == sorted(bases)
    for step, loss_orth in scalars['loss_orth']:
        errors = [dict(scalars[f'orth_error/{name}'])[step] for name in bases]
        assert loss_orth == pytest.approx(10 * sum(errors), rel=1e-5)


def test_mmpretrain_classifier_with_shared_basis_resnet(tmp_path):
    classifier = dict(
        type='ImageClassifier',
        backbone=dict(
            type='SharedBasisResNet',
            depth=18,
            base_channels=8,
            shared_rank=4,
            unique_rank=1),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=4, in_channels=64))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = PRETRAIN_MODELS.build(classifier)
    bases = list(find_shared_bases(model))
    assert bases == [f'backbone.layer{i}.shared_basis' for i in range(1, 5)]
    generator = torch.Generator().manual_seed(0)
    dataset = [
        dict(
            inputs=torch.randint(256, (3, 32, 32), generator=generator,
                                 dtype=torch.uint8),
            data_samples=DataSample().set_gt_label(label))
        for label in (0, 1, 2, 3)
    ]
    scalars = train_with_hook(model, str(tmp_path), dataset, 'mmpretrain')
    assert 'loss' in scalars and 'loss_orth' in scalars
    assert_loss_orth_sums_all_bases(scalars, bases)


def test_mmdet_faster_rcnn_with_shared_basis_resnet(tmp_path):
    cfg = get_config('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    cfg.model.backbone = dict(
        type='SharedBasisResNet', depth=50, share='conv2', init_cfg=None)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = DET_MODELS.build(cfg.model)
    bases = list(find_shared_bases(model))
    assert len(bases) == 4
    batch = demo_mm_inputs(
        batch_size=4, image_shapes=(3, 64, 64), num_items=[2, 1, 3, 2],
        num_classes=80)
    dataset = [
        dict(inputs=inputs, data_samples=sample)
        for inputs, sample in zip(batch['inputs'], batch['data_samples'])
    ]
    scalars = train_with_hook(model, str(tmp_path), dataset, 'mmdet')
    assert {'loss_rpn_cls', 'loss_bbox', 'loss_orth'} <= set(scalars)
    assert_loss_orth_sums_all_bases(scalars, bases)


def capture_basis_grads(runner, model) -> list:
    grads = []
    model.blocks[0].shared_basis.register_hook(
        lambda grad: grads.append(grad.detach().clone()))
    runner.train()
    return grads


def sgd(model) -> torch.optim.Optimizer:
    """SGD with lr 0: the weights, so the error gradient, stay as built."""
    return torch.optim.SGD(model.parameters(), lr=0., momentum=0.9)


def fp32(model, monkeypatch) -> OptimWrapper:
    return OptimWrapper(sgd(model))


def accumulate_2(model, monkeypatch) -> OptimWrapper:
    return OptimWrapper(sgd(model), accumulative_counts=2)


def amp_bf16(model, monkeypatch) -> OptimWrapper:
    return cpu_amp_optim_wrapper(sgd(model), monkeypatch, LOSS_SCALE)


@pytest.mark.parametrize('optim_wrapper,factor', [(fp32, 1.),
                                                  (accumulate_2, 0.5),
                                                  (amp_bf16, LOSS_SCALE)])
@pytest.mark.parametrize('reduction', ['sum', 'mean'])
def test_gradient_is_lambda_times_error_gradient(tmp_path, monkeypatch,
                                                 optim_wrapper, factor,
                                                 reduction):
    """In each backward pass, the gradient of the basis with the hook minus
    that without it is autograd's gradient of lambda * error, times the loss
    scale and divided by the accumulation count."""
    loss_weight = 3.
    model = tiny_net(perturbed=True)
    grads = {}
    for name, hooks in [('without', []),
                        ('with', [dict(type='OrthogonalityLossHook',
                                       loss_weight=loss_weight,
                                       reduction=reduction)])]:
        trained = copy.deepcopy(model)
        runner = build_runner(
            trained,
            str(tmp_path / name),
            hooks,
            max_iters=2,
            optim_wrapper=optim_wrapper(trained, monkeypatch))
        dtypes = set()
        trained.blocks[0].register_forward_hook(
            lambda module, inputs, output: dtypes.add(output.dtype))
        grads[name] = capture_basis_grads(runner, trained)
        assert dtypes == {
            torch.bfloat16 if optim_wrapper is amp_bf16 else torch.float32
        }

    weight = model.blocks[0].shared_basis.detach().clone()
    weight.requires_grad_()
    (loss_weight * orthogonality_error(weight, reduction)).backward()
    expected = factor * weight.grad
    assert expected.abs().max() > 1e-3
    assert len(grads['with']) == len(grads['without']) == 2
    for with_hook, without_hook in zip(grads['with'], grads['without']):
        torch.testing.assert_close(
            with_hook - without_hook, expected, rtol=1e-4,
            atol=1e-5 * factor)


def test_no_shared_basis_warns_once_and_adds_nothing(tmp_path):
    model = PlainNet()
    runner = build_runner(model, str(tmp_path),
                          [dict(type='OrthogonalityLossHook')], max_iters=3)
    runner.train()
    assert text_log(runner).count('has no shared filter basis') == 1
    scalars = logged_scalars(runner)
    assert 'loss_cls' in scalars and 'loss_orth' not in scalars
    assert 'parse_losses' not in vars(model)
    assert not model._forward_hooks


@pytest.mark.parametrize('bad_value', [float('nan'), float('inf')])
def test_non_finite_error_names_the_basis(tmp_path, bad_value):
    model = tiny_net()
    with torch.no_grad():
        model.blocks[0].shared_basis[0, 0, 0, 0] = bad_value
    runner = build_runner(model, str(tmp_path),
                          [dict(type='OrthogonalityLossHook')], max_iters=1)
    with pytest.raises(FloatingPointError, match=BASIS):
        runner.train()


class NetWithLossOrth(TinySharedBasisNet):
    """A model whose own losses hold a ``loss_orth``."""

    def forward(self, inputs, labels, mode='tensor'):
        outputs = super().forward(inputs, labels, mode)
        if mode == 'loss':
            outputs['loss_orth'] = outputs['loss_cls'].detach() * 0
        return outputs


def test_loss_orth_from_the_model_is_an_error(tmp_path):
    torch.manual_seed(0)
    model = NetWithLossOrth()
    runner = build_runner(model, str(tmp_path),
                          [dict(type='OrthogonalityLossHook')], max_iters=1)
    with pytest.raises(ValueError, match='already hold'):
        runner.train()
    assert 'parse_losses' not in vars(model)


def run_ddp_script(out_dir: str) -> None:
    """Run ddp_orthogonality_hook_script.py on two gloo ranks; kill the whole
    process group if it takes longer than 5 minutes."""
    env = dict(
        os.environ,
        OMP_NUM_THREADS='1',
        PYTHONPATH=os.pathsep.join(
            [osp.dirname(HERE), HERE,
             os.environ.get('PYTHONPATH', '')]))
    # the resumed run loads its checkpoint with torch.load's default
    # (weights_only=True), which importing sharedbasis_mm allows
    env.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)
    run_process_group([
        sys.executable, '-m', 'torch.distributed.run', '--standalone',
        '--nproc_per_node=2',
        osp.join(HERE, 'ddp_orthogonality_hook_script.py'), out_dir
    ], env, timeout=300)


def test_ddp_two_ranks_and_resume(tmp_path):
    """Two gloo ranks on the CPU: the bases stay identical across ranks and
    tied to their blocks, and a run resumed from the checkpoint of
    iteration 2 repeats the losses of iterations 3 and 4."""
    run_ddp_script(str(tmp_path))
    ranks = []
    for rank in range(2):
        with open(tmp_path / f'rank{rank}.json') as f:
            ranks.append(json.load(f))
    for report in ranks:
        assert report['world_size'] == 2
        assert report['tied']
        assert report['basis_hash'] != report['initial_basis_hash']
        assert set(report['losses']['4']) == {
            'loss', 'loss_cls', 'loss_orth', 'log10_orth_error'
        }
        assert report['losses']['1']['loss_orth'] > 1
        assert report['resumed_basis_hash'] == report['basis_hash']
        for iteration in ('3', '4'):
            assert report['resumed_losses'][iteration] == pytest.approx(
                report['losses'][iteration], rel=1e-6)
    assert ranks[0]['basis_hash'] == ranks[1]['basis_hash']
    # Each rank sees its own data, but the same bases.
    for iteration in ('1', '4'):
        assert ranks[0]['losses'][iteration]['loss_cls'] != \
            ranks[1]['losses'][iteration]['loss_cls']
        assert ranks[0]['losses'][iteration]['loss_orth'] == \
            ranks[1]['losses'][iteration]['loss_orth']


@pytest.mark.parametrize('name,basis_norm,regularized', [
    ('resnet34-s16u1-nobn', False, False),
    ('resnet34-s16u1-bn', True, False),
    ('resnet34-s16u1-nobn-orthoreg', False, True),
    ('resnet34-s16u1-bn-orthoreg', True, True),
])
def test_figure_3_ablation_configs(name, basis_norm, regularized):
    """The four panels of Figure 3: ResNet34-S16U1 with or without the BN
    after each of its 4 bases and the regularization, all recording the
    gradient flow (the model is built for panel a)."""
    cfg = Config.fromfile(
        osp.join(CONFIGS, 'orthogonality', f'{name}_1xb128_cifar100.py'))
    hooks = [HOOKS.build(hook) for hook in cfg.custom_hooks]
    assert [type(hook).__name__ for hook in hooks] == \
        ['OrthogonalityLossHook'] * regularized + ['GradientFlowHook']
    assert cfg.paper_reference is None
    backbone = cfg.model.backbone
    assert (backbone.basis_cfg.shared_rank,
            backbone.basis_cfg.unique_rank) == (16, 1)
    assert ('norm_cfg' not in backbone.basis_cfg) == basis_norm
    if not basis_norm and not regularized:
        model = build_model_from_config(cfg)
        assert len(find_shared_bases(model)) == 4
        layers = [
            m for m in model.modules() if isinstance(m, SharedBasisConv2d)
        ]
        assert layers and all(layer.norm is None for layer in layers)


def test_orthogonality_base_config_and_no_ortho_reg_ablation():
    """configs/_base_/orthogonality_regularization.py adds the hook with
    lambda = 10; the Table 1 NoOrthoReg config is ResNet50-Shared without
    any custom hook."""
    base = Config.fromfile(
        osp.join(CONFIGS, '_base_', 'orthogonality_regularization.py'))
    hook, = [HOOKS.build(hook) for hook in base.custom_hooks]
    assert isinstance(hook, OrthogonalityLossHook)
    assert (hook.loss_weight, hook.reduction) == (10., 'mean')
    shared = Config.fromfile(
        osp.join(CONFIGS, 'shared_basis', 'resnet50-shared_8xb32_in1k.py'))
    ablation = Config.fromfile(
        osp.join(CONFIGS, 'orthogonality',
                 'resnet50-shared-noorthoreg_8xb32_in1k.py'))
    assert ablation.custom_hooks == []
    assert ablation.model == shared.model


@pytest.mark.parametrize('case', list(CASES))
def test_same_numbers_as_the_reference(case):
    """Losses, basis gradients (at each backward pass and each optimizer
    step) and trained bases agree within 1e-6 relative with
    tests/data/orthogonality_reference.pt, written by
    tests/orthogonality_reference.py with the hook of commit 855e6b4 (which
    wrapped the model's ``parse_losses``), for plain SGD, accumulation over
    2 iterations, gradient clipping and bf16 mixed precision."""
    reference = torch.load(REFERENCE)[case]
    numbers = train_case(case)
    for key, expected in reference['logged'].items():
        torch.testing.assert_close(
            numbers['logged'][key], expected, rtol=1e-6, atol=0)
    for group in ('backward_grads', 'step_grads', 'bases'):
        assert numbers[group].keys() == reference[group].keys()
        for name, expected in reference[group].items():
            torch.testing.assert_close(
                numbers[group][name],
                expected,
                rtol=1e-6,
                atol=1e-6 * expected.abs().max().item())
