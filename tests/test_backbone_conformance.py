"""Backbone conformance: the behaviours that mmdet's and mmpretrain's own
backbone tests check on their ResNets, ResNeXt, SEResNet, ResNet_CIFAR and
MobileNetV2 (frozen stages, norm_eval, out_indices, strides and dilations,
style, stem options, with_cp, zero_init_residual, norm_cfg, plugins, bad
arguments), checked on every backbone family of this project.

Each check is parametrized over our configurations (small widths, 32 x 32
inputs) and over the upstream classes themselves, which checks the suite:
a check that an upstream class fails is either a property its reference
does not have (then the subject declares it unsupported) or an upstream
defect, marked ``xfail(strict=True)`` with the reason.
"""
from typing import Callable, Dict, List, NamedTuple

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import ContextBlock
from mmdet.models.backbones import ResNet as MMDetResNet
from mmdet.models.backbones import ResNeSt as MMDetResNeSt
from mmdet.models.backbones import ResNeXt as MMDetResNeXt
from mmdet.models.backbones.resnet import BasicBlock as MMDetBasicBlock
from mmdet.models.backbones.resnet import Bottleneck as MMDetBottleneck
from mmpretrain.models.backbones import MobileNetV2 as MMPretrainMobileNetV2
from mmpretrain.models.backbones import ResNet as MMPretrainResNet
from mmpretrain.models.backbones import ResNet_CIFAR as MMPretrainResNetCIFAR
from mmpretrain.models.backbones import SEResNet as MMPretrainSEResNet
from mmpretrain.models.backbones.resnet import \
    BasicBlock as MMPretrainBasicBlock
from mmpretrain.models.backbones.resnet import \
    Bottleneck as MMPretrainBottleneck
from mmpretrain.models.utils import InvertedResidual
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from sharedbasis_mm.backbones import (SharedBasisMobileNetV2,
                                      SharedBasisResNeXt,
                                      SharedBasisResNet,
                                      SharedBasisResNetCifar,
                                      SEResNetTiedSE, TiedResNeSt,
                                      TiedResNet, TiedResNeXt, TiedSEResNet)
from sharedbasis_mm.backbones.base_resnet import BaseResNet

NORMS = (_BatchNorm, nn.GroupNorm, _InstanceNorm, nn.LayerNorm)
RESIDUAL_BLOCKS = (MMDetBasicBlock, MMDetBottleneck, MMPretrainBasicBlock,
                   MMPretrainBottleneck)


class Subject(NamedTuple):
    """A backbone configuration under test.

    ``build(**overrides)`` builds it; the flags say which properties its
    reference defines (an upstream class is checked only on what its own
    interface offers)."""
    name: str
    build: Callable[..., nn.Module]
    ours: bool
    kind: str  # 'basic', 'bottleneck' (ResNets) or 'mobilenet'
    num_stages: int = 4
    default_norm_eval: bool = False
    negative_out_indices: bool = True
    plugins: bool = False
    style: bool = True
    stem_options: bool = True  # stem_channels, deep_stem, avg_down
    cifar_stem: bool = False
    zero_init: bool = True
    dilations: bool = True
    xfail: Dict[str, str] = {}


def partial(cls: type, **defaults) -> Callable[..., nn.Module]:

    def build(**overrides):
        return cls(**{**defaults, **overrides})

    build.__name__ = cls.__name__
    return build


SB18 = dict(depth=18, base_channels=8, shared_rank=3, unique_rank=1)
SB50 = dict(depth=50, base_channels=4)
TIED = dict(
    depth=50, base_channels=8, base_width=4, split_blocks=(1, 1, 1, 1))
CIFAR3 = dict(
    depth=20,
    num_stages=3,
    base_channels=8,
    strides=(1, 2, 2),
    dilations=(1, 1, 1),
    out_indices=(0, 1, 2),
    shortcut_type='pad',
    shared_rank=3,
    unique_rank=1)
ALL = (0, 1, 2, 3)

RESNEST_NO_DROP_PATH = ('ResNeSt\'s bottleneck has its own forward, '
                        'without a drop path: drop_path_rate is refused')
RESNEST_POOL_STRIDES = ('ResNeSt pools after its 3 x 3 convolution: the pool '
                        'strides, not conv2')

SUBJECTS = [
    # ours
    Subject('SharedBasisResNet-18-s3u1',
            partial(SharedBasisResNet, **SB18, out_indices=ALL), True,
            'basic'),
    Subject('SharedBasisResNet-18-s3u1-2bases',
            partial(SharedBasisResNet, **SB18, num_bases=2, out_indices=ALL),
            True, 'basic'),
    Subject('SharedBasisResNet-18-nobasisnorm',
            partial(SharedBasisResNet, **SB18, basis_norm_cfg=None,
                    out_indices=ALL), True, 'basic'),
    *[
        Subject(f'SharedBasisResNet-50-{share}',
                partial(SharedBasisResNet, **SB50, share=share,
                        out_indices=ALL), True, 'bottleneck', plugins=True)
        for share in ('conv2', 'conv1_conv2', 'conv2_conv3', 'all')
    ],
    Subject('SharedBasisResNeXt-50',
            partial(SharedBasisResNeXt, depth=50, groups=2, base_width=4,
                    base_channels=8, shared_rank=8, unique_rank=2,
                    shared_groups=2, out_indices=ALL), True, 'bottleneck'),
    Subject('SharedBasisResNetCifar-20',
            partial(SharedBasisResNetCifar, **CIFAR3), True, 'basic',
            num_stages=3, stem_options=False, cifar_stem=True),
    Subject('SharedBasisResNetCifar-18',
            partial(SharedBasisResNetCifar, **SB18, out_indices=ALL), True,
            'basic', stem_options=False, cifar_stem=True),
    *[
        Subject(f'SharedBasisMobileNetV2-{share}',
                partial(SharedBasisMobileNetV2, share=share,
                        widen_factor=0.25, out_indices=(1, 2, 4, 6)), True,
                'mobilenet', num_stages=8, negative_out_indices=False,
                style=False, stem_options=False, zero_init=False,
                dilations=False)
        for share in ('expand', 'expand_project')
    ],
    Subject('TiedResNet-50', partial(TiedResNet, **TIED, out_indices=ALL),
            True, 'bottleneck', plugins=True),
    Subject('TiedResNeXt-50',
            partial(TiedResNeXt, **{**TIED, 'base_width': 8}, groups=2,
                    out_indices=ALL), True, 'bottleneck', plugins=True),
    Subject('TiedSEResNet-50',
            partial(TiedSEResNet, **TIED, se_ratio=4, out_indices=ALL), True,
            'bottleneck', plugins=True),
    # ResNeSt's bottleneck has its own forward, without stochastic depth;
    # where it pools after its 3 x 3 convolution (mmdet's ResNeSt,
    # avd_first=False), the pool, not conv2, strides in 'pytorch' style
    Subject('TiedResNeSt-50',
            partial(TiedResNeSt, depth=50, base_channels=8, stem_channels=8,
                    out_indices=ALL), True, 'bottleneck', plugins=True,
            xfail=dict(drop_path=RESNEST_NO_DROP_PATH)),
    Subject('TiedResNeSt-50-pool-after',
            partial(TiedResNeSt, depth=50, base_channels=8, stem_channels=8,
                    avd_first=False, out_indices=ALL), True, 'bottleneck',
            xfail=dict(drop_path=RESNEST_NO_DROP_PATH,
                       style=RESNEST_POOL_STRIDES)),
    Subject('BaseResNet-18',
            partial(BaseResNet, depth=18, base_channels=8, out_indices=ALL),
            True, 'basic'),
    Subject('BaseResNet-50',
            partial(BaseResNet, depth=50, base_channels=4, out_indices=ALL),
            True, 'bottleneck', plugins=True),
    # the references
    Subject('mmdet.ResNet-18',
            partial(MMDetResNet, depth=18, base_channels=8, out_indices=ALL),
            False, 'basic', default_norm_eval=True,
            negative_out_indices=False),
    Subject('mmdet.ResNet-50',
            partial(MMDetResNet, depth=50, base_channels=4, out_indices=ALL),
            False, 'bottleneck', default_norm_eval=True,
            negative_out_indices=False, plugins=True),
    Subject('mmdet.ResNeXt-50',
            partial(MMDetResNeXt, depth=50, groups=2, base_width=4,
                    base_channels=8, out_indices=ALL), False, 'bottleneck',
            default_norm_eval=True, negative_out_indices=False,
            plugins=True,
            xfail=dict(zero_init='mmdet\'s ResNeXt ignores '
                       'zero_init_residual: mmdet\'s ResNet zero-inits only '
                       'when `block is Bottleneck`, not its subclass')),
    # ResNetV1d fixes its deep stem and average-pool shortcut
    Subject('mmdet.ResNeSt-50',
            partial(MMDetResNeSt, depth=50, base_channels=8, stem_channels=8,
                    out_indices=ALL), False, 'bottleneck',
            default_norm_eval=True, negative_out_indices=False,
            plugins=True, stem_options=False,
            xfail=dict(style=RESNEST_POOL_STRIDES,
                       zero_init='mmdet\'s ResNeSt ignores '
                       'zero_init_residual: mmdet\'s ResNet zero-inits only '
                       'when `block is Bottleneck`, not its subclass')),
    Subject('mmpretrain.ResNet-18',
            partial(MMPretrainResNet, depth=18, base_channels=8,
                    out_indices=ALL), False, 'basic',
            negative_out_indices=False),
    Subject('mmpretrain.ResNet-50',
            partial(MMPretrainResNet, depth=50, base_channels=4,
                    out_indices=ALL), False, 'bottleneck',
            negative_out_indices=False),
    Subject('mmpretrain.SEResNet-50',
            partial(MMPretrainSEResNet, depth=50, base_channels=4,
                    se_ratio=4, out_indices=ALL), False, 'bottleneck',
            negative_out_indices=False,
            xfail=dict(drop_path='mmpretrain\'s SEResNet accepts '
                       'drop_path_rate and ignores it: SEBottleneck.forward '
                       'applies no drop path')),
    # mmpretrain's SEResNet with TiedSE in place of its SE modules: the host's
    # own interface and argument checks, so checked as the reference above
    # (ours=False), with the same known upstream defect
    Subject('SEResNetTiedSE-50',
            partial(SEResNetTiedSE, depth=50, base_channels=4, se_ratio=4,
                    se_blocks=2, out_indices=ALL), False, 'bottleneck',
            negative_out_indices=False,
            xfail=dict(drop_path='SEResNetTiedSE keeps mmpretrain\'s '
                       'SEBottleneck.forward, which applies no drop path')),
    Subject('mmpretrain.ResNet_CIFAR-18',
            partial(MMPretrainResNetCIFAR, depth=18, base_channels=8,
                    out_indices=ALL), False, 'basic',
            negative_out_indices=False, stem_options=False,
            cifar_stem=True),
    Subject('mmpretrain.MobileNetV2',
            partial(MMPretrainMobileNetV2, widen_factor=0.25,
                    out_indices=(1, 2, 4, 6)), False, 'mobilenet',
            num_stages=8, negative_out_indices=False, style=False,
            stem_options=False, zero_init=False, dilations=False,
            xfail=dict(frozen_stages='mmpretrain\'s MobileNetV2 freezes '
                       'the stem\'s parameters but leaves its BatchNorm in '
                       'training mode')),
]


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """Tiny models: one thread is fastest, and spares a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def evaluating(model: nn.Module) -> nn.Module:
    """``model`` in eval mode (mmdet's ``ResNet.train`` returns None, so
    ``model.eval()`` does too)."""
    model.eval()
    return model


def subjects(check: str, where: Callable[[Subject], bool] = lambda s: True):
    """``pytest.param`` of each subject to which ``check`` applies, marked
    xfail(strict) where the subject declares a known failure."""
    params = []
    for subject in SUBJECTS:
        if not where(subject):
            continue
        marks = []
        if check in subject.xfail:
            marks.append(
                pytest.mark.xfail(strict=True, reason=subject.xfail[check]))
        params.append(pytest.param(subject, id=subject.name, marks=marks))
    return params


def is_norm(module: nn.Module) -> bool:
    return isinstance(module, NORMS)


def resnet_like(subject: Subject) -> bool:
    return subject.kind in ('basic', 'bottleneck')


def stages(model: nn.Module, subject: Subject) -> List[nn.Module]:
    """The stem, then each residual stage (MobileNetV2: each layer)."""
    if subject.kind == 'mobilenet':
        stem = [model.conv1]
        layers = [getattr(model, f'layer{i}') for i in range(1, 8)]
    else:
        stem = ([model.stem] if getattr(model, 'deep_stem', False) else
                [model.conv1, model.norm1])
        layers = [getattr(model, name) for name in model.res_layers]
    return [nn.ModuleList(stem), *layers]


def blocks(model: nn.Module) -> List[nn.Module]:
    return [
        m for m in model.modules()
        if isinstance(m, (*RESIDUAL_BLOCKS, InvertedResidual))
    ]


def image(subject: Subject, batch: int = 2) -> torch.Tensor:
    """A seeded batch of 32 x 32 images."""
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch, 3, 32, 32, generator=generator)


# --------------------------------------------------------------------------
# training mode: frozen stages and norm_eval


@pytest.mark.parametrize('subject', subjects('default_norms'))
def test_default_training_mode_as_reference(subject):
    """Without norm_eval, every norm trains (mmpretrain's default); mmdet's
    ResNet keeps its detection default norm_eval=True."""
    model = subject.build()
    model.train()
    norms = [m for m in model.modules() if is_norm(m)]
    assert norms
    assert all(m.training != subject.default_norm_eval for m in norms)
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize('subject', subjects('norm_eval'))
@pytest.mark.parametrize('norm_eval', [True, False])
def test_norm_eval(subject, norm_eval):
    model = subject.build(norm_eval=norm_eval)
    model.train()
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            assert m.training is not norm_eval
    # the running statistics move only where the norms train
    before = [m.running_mean.clone() for m in model.modules()
              if isinstance(m, _BatchNorm)]
    model(image(subject))
    after = [m.running_mean for m in model.modules()
             if isinstance(m, _BatchNorm)]
    moved = [not torch.equal(b, a) for b, a in zip(before, after)]
    assert not any(moved) if norm_eval else all(moved)


@pytest.mark.parametrize('subject', subjects('frozen_stages'))
def test_frozen_stages(subject):
    for frozen in range(-1, min(subject.num_stages, 4) + 1):
        model = subject.build(frozen_stages=frozen, norm_eval=False)
        model.train()
        for index, stage in enumerate(stages(model, subject)):
            is_frozen = index <= frozen
            for param in stage.parameters():
                assert param.requires_grad is not is_frozen, (frozen, index)
            for m in stage.modules():
                if is_norm(m):
                    assert m.training is not is_frozen, (frozen, index)
        # a frozen stage gets no gradient, the next ones do
        out = model(image(subject))[-1]
        if not out.requires_grad:  # every stage frozen
            assert frozen == len(stages(model, subject)) - 1
            continue
        out.sum().backward()
        grads = [
            all(p.grad is None for p in stage.parameters())
            for stage in stages(model, subject)
        ]
        assert grads[:frozen + 1] == [True] * (frozen + 1)
        assert not any(grads[frozen + 1:])


# --------------------------------------------------------------------------
# outputs: out_indices, strides, dilations, style, stems


def test_suite_covers_every_backbone_family():
    ours = {type(s.build()) for s in SUBJECTS if s.ours}
    assert ours == {
        BaseResNet, SharedBasisResNet, SharedBasisResNetCifar,
        SharedBasisMobileNetV2, SharedBasisResNeXt,
        TiedResNet, TiedResNeXt, TiedSEResNet, TiedResNeSt
    }


@pytest.mark.parametrize('subject', subjects('out_indices'))
def test_out_indices(subject):
    torch.manual_seed(0)
    model = evaluating(subject.build())
    x = image(subject)
    everything = model(x)
    chosen = model.out_indices
    for subset in ([chosen[0]], [chosen[-1]], chosen[1:]):
        model.out_indices = subset
        outs = model(x)
        assert len(outs) == len(subset)
        for out, index in zip(outs, subset):
            torch.testing.assert_close(out, everything[chosen.index(index)])
    if resnet_like(subject):
        # each stage halves the size where its stride is 2
        strides = (1, 2, 2, 2)[:subject.num_stages]
        size = everything[0].shape[-1]
        for out, stride in zip(everything[1:], strides[1:]):
            size //= stride
            assert out.shape[-1] == size


@pytest.mark.parametrize(
    'subject', subjects('negative_out_indices',
                        lambda s: s.negative_out_indices))
def test_negative_out_indices_count_from_the_last_stage(subject):
    model = subject.build(out_indices=(-1, ))
    positive = subject.build(out_indices=(subject.num_stages - 1, ))
    positive.load_state_dict(model.state_dict())
    x = image(subject)
    out, = evaluating(model)(x)
    expected, = evaluating(positive)(x)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize('subject',
                         subjects('strides', lambda s: s.dilations))
def test_strides_and_dilations(subject):
    n = subject.num_stages
    strides = (1, ) * n
    dilations = tuple(range(1, n + 1))
    model = evaluating(
        subject.build(strides=strides, dilations=dilations))
    outs = model(image(subject))
    assert len({out.shape[-1] for out in outs}) == 1
    # every block of stage i dilates its 3 x 3 convolution(s) by i + 1 (the
    # BasicBlocks of mmdet and mmpretrain dilate the first only)
    for index in range(n):
        stage = stages(model, subject)[index + 1]
        for block in stage.children():
            found = {
                _pair(m.dilation)
                for m in block.modules()
                if getattr(m, 'kernel_size', None) in (3, (3, 3))
                and hasattr(m, 'dilation')
            }
            assert (dilations[index], ) * 2 in found
            assert found <= {(1, 1), (dilations[index], ) * 2}


def _pair(value):
    return value if isinstance(value, tuple) else (value, value)


def first_conv_outputs(model: nn.Module, x: torch.Tensor) -> List[int]:
    """The spatial sizes after conv1 and conv2 of the first block of the
    second stage."""
    block = model.layer2[0]
    sizes = []
    hooks = [
        getattr(block, name).register_forward_hook(
            lambda m, i, o: sizes.append(o.shape[-1]))
        for name in ('conv1', 'conv2')
    ]
    model(x)
    for hook in hooks:
        hook.remove()
    return sizes


@pytest.mark.parametrize(
    'subject',
    subjects('style', lambda s: s.style and s.kind == 'bottleneck'))
def test_style_puts_the_stride_in_conv2_or_conv1(subject):
    x = image(subject)
    pytorch = first_conv_outputs(evaluating(subject.build(style='pytorch')),
                                 x)
    caffe = first_conv_outputs(evaluating(subject.build(style='caffe')), x)
    # pytorch: the 3 x 3 conv2 strides; caffe: the 1 x 1 conv1
    assert pytorch[0] == 2 * pytorch[1]
    assert caffe[0] == caffe[1]
    assert caffe[1] == pytorch[1]


@pytest.mark.parametrize('subject',
                         subjects('stem', lambda s: s.stem_options))
def test_stem_channels_deep_stem_and_avg_down(subject):
    x = image(subject)
    model = evaluating(subject.build(stem_channels=16))
    stem_out = []
    model.layer1.register_forward_pre_hook(
        lambda m, args: stem_out.append(args[0]))
    plain = model(x)
    assert stem_out[-1].shape[1] == 16
    deep = evaluating(subject.build(stem_channels=16, deep_stem=True))
    assert isinstance(deep.stem, nn.Sequential)
    assert not hasattr(deep, 'conv1')
    deep.layer1.register_forward_pre_hook(
        lambda m, args: stem_out.append(args[0]))
    assert [o.shape for o in deep(x)] == [o.shape for o in plain]
    assert stem_out[-1].shape == stem_out[0].shape
    avg = evaluating(subject.build(avg_down=True))
    pools = [
        m for m in avg.layer2[0].downsample.modules()
        if isinstance(m, nn.AvgPool2d)
    ]
    assert len(pools) == 1
    assert [o.shape for o in avg(x)] == [
        o.shape for o in evaluating(subject.build())(x)
    ]


@pytest.mark.parametrize('subject',
                         subjects('cifar_stem', lambda s: s.cifar_stem))
def test_cifar_stem_keeps_the_resolution_and_refuses_deep_stem(subject):
    model = evaluating(subject.build())
    first = model(image(subject))[0]
    assert first.shape[-1] == 32
    with pytest.raises((ValueError, AssertionError),
                       match='deep_stem' if subject.ours else None):
        subject.build(deep_stem=True)


# --------------------------------------------------------------------------
# with_cp, zero_init_residual


@pytest.mark.parametrize('subject', subjects('with_cp'))
def test_with_cp_gives_the_same_outputs_and_gradients(subject):
    torch.manual_seed(0)
    plain = subject.build()
    checkpointed = subject.build(with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    assert all(block.with_cp for block in blocks(checkpointed))
    results = []
    # in double precision: the recomputation may take other float32 kernels
    for model in (plain, checkpointed):
        model.double().train()
        x = image(subject).double().requires_grad_()
        outs = model(x)
        sum(out.sum() for out in outs).backward()
        results.append((outs, x.grad))
    (outs_a, grad_a), (outs_b, grad_b) = results
    for a, b in zip(outs_a, outs_b):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(grad_a, grad_b)


def last_norm(block: nn.Module) -> nn.Module:
    return block.norm3 if hasattr(block, 'norm3') else block.norm2


@pytest.mark.parametrize('subject', subjects('zero_init',
                                             lambda s: s.zero_init))
def test_zero_init_residual(subject):
    check_zero_init_residual(subject, True)


@pytest.mark.parametrize('subject', subjects('no_zero_init',
                                             lambda s: s.zero_init))
def test_no_zero_init_residual(subject):
    check_zero_init_residual(subject, False)


def check_zero_init_residual(subject, zero_init_residual):
    """With zero_init_residual, the last norm of every residual block is
    zero after init_weights, so each block starts as relu(shortcut)."""
    model = subject.build(zero_init_residual=zero_init_residual)
    model.init_weights()
    residual = [m for m in model.modules() if isinstance(m, RESIDUAL_BLOCKS)]
    assert residual
    for block in residual:
        params = list(last_norm(block).parameters())
        zero = all(torch.count_nonzero(p) == 0 for p in params)
        assert zero is zero_init_residual
    if not zero_init_residual:
        return
    seen = []

    def check(block, args, out):
        x, = args
        shortcut = block.downsample(x) if block.downsample is not None else x
        torch.testing.assert_close(out, F.relu(shortcut))
        seen.append(block)

    model.eval()
    for block in residual:
        block.register_forward_hook(check)
    model(image(subject))
    assert len(seen) == len(residual)


# --------------------------------------------------------------------------
# norm_cfg


@pytest.mark.parametrize('subject', subjects('norm_cfg'))
@pytest.mark.parametrize('norm_cfg', [
    dict(type='GN', num_groups=2, requires_grad=True),
    dict(type='SyncBN', requires_grad=True),
    dict(type='BN', requires_grad=False),
],
                         ids=['GN', 'SyncBN', 'BN-frozen'])
def test_norm_cfg_reaches_every_norm(subject, norm_cfg):
    model = subject.build(norm_cfg=norm_cfg)
    expected = type(build_norm_layer(norm_cfg, 8)[1])
    norms = [m for m in model.modules() if is_norm(m)]
    assert norms
    assert all(type(m) is expected for m in norms), {
        type(m).__name__
        for m in norms
    }
    for m in norms:
        for param in m.parameters():
            assert param.requires_grad is norm_cfg['requires_grad']
    if norm_cfg['type'] == 'GN':
        model.train()
        assert model(image(subject))[-1].isfinite().all()


# --------------------------------------------------------------------------
# plugins (mmdet's ResNet interface)


@pytest.mark.parametrize('subject', subjects('plugins', lambda s: s.plugins))
@pytest.mark.parametrize('position',
                         ['after_conv1', 'after_conv2', 'after_conv3'])
def test_plugin_at_each_position(subject, position):
    stages_with = (False, True, True, False)
    plugins = [
        dict(
            cfg=dict(type='ContextBlock', ratio=1. / 4),
            stages=stages_with,
            position=position)
    ]
    model = subject.build(plugins=plugins)
    calls = []
    for index, name in enumerate(model.res_layers):
        for block in getattr(model, name):
            contexts = [
                m for m in block.children() if isinstance(m, ContextBlock)
            ]
            assert len(contexts) == stages_with[index]
            for context in contexts:
                context.register_forward_hook(
                    lambda m, i, o: calls.append(i[0].shape[1]))
                expected = {
                    'after_conv1': block.conv1,
                    'after_conv2': block.conv2,
                    'after_conv3': block.conv3
                }[position]
                out_channels = _out_channels(expected, block, position)
                assert context.in_channels == out_channels
    model.train()
    outs = model(image(subject))
    assert len(outs) == 4
    num_blocks = sum(
        len(getattr(model, name)) for name, on in zip(model.res_layers,
                                                      stages_with) if on)
    assert len(calls) == num_blocks


def _out_channels(conv: nn.Module, block: nn.Module, position: str) -> int:
    if position == 'after_conv3':
        return block.planes * block.expansion
    if position == 'after_conv2' and not hasattr(block, 'norm2'):
        # ResNeSt: the split attention (conv2) holds its norms
        return block.conv2.channels
    norm = block.norm1 if position == 'after_conv1' else block.norm2
    return norm.num_features


# --------------------------------------------------------------------------
# bad arguments


def invalid_arguments(subject: Subject) -> List[dict]:
    """Arguments each reference refuses (mmdet's and mmpretrain's tests)
    and those beyond: frozen_stages out of range."""
    if subject.kind == 'mobilenet':
        return [
            dict(out_indices=(8, )),
            dict(frozen_stages=8),
            dict(frozen_stages=-2),
        ]
    n = subject.num_stages
    args = [
        dict(depth=21),
        dict(num_stages=0),
        dict(num_stages=5),
        dict(strides=(1, ) * (n - 1)),
        dict(out_indices=(n, )),
        dict(frozen_stages=n + 1),
    ]
    if subject.ours or subject.kind == 'bottleneck':
        # mmdet's and mmpretrain's BasicBlocks ignore the style
        args.append(dict(style='tensorflow'))
    return args


def invalid_cases(where=lambda s: True):
    params = []
    for subject in SUBJECTS:
        if where(subject):
            for args in invalid_arguments(subject):
                key = ','.join(args)
                params.append(
                    pytest.param(subject, args, id=f'{subject.name}-{key}'))
    return params


@pytest.mark.parametrize('subject,args', invalid_cases())
def test_invalid_arguments_are_refused(subject, args):
    if subject.ours:
        name, value = next(iter(args.items()))
        with pytest.raises(ValueError) as error:
            subject.build(**args)
        # the message names the parameter and its value
        assert name in str(error.value)
        assert repr(value).strip('()').rstrip(',') in str(error.value)
    else:
        with pytest.raises((AssertionError, KeyError, ValueError,
                            AttributeError)):
            subject.build(**args)


@pytest.mark.parametrize('subject', subjects('drop_path', resnet_like))
def test_drop_path_rate(subject):
    """mmpretrain's stochastic depth (its test_resnet runs a training
    forward at drop_path_rate=0.5): the rate rises linearly over the blocks
    of the architecture from 0 to drop_path_rate, the branches are dropped
    at random in training and never in eval mode, where the outputs are
    those of the same weights without stochastic depth."""
    if isinstance(subject.build(), MMDetResNet) and not subject.ours:
        pytest.skip('mmdet\'s ResNet has no drop_path_rate argument')
    plain = subject.build(drop_path_rate=0.)
    model = subject.build(drop_path_rate=0.5)
    model.load_state_dict(plain.state_dict())
    residual = blocks(model)
    total = sum(model.arch_settings[model.depth][1])
    rates = [getattr(block.drop_path, 'drop_prob', 0.) for block in residual]
    assert rates == pytest.approx(
        [0.5 * i / (total - 1) for i in range(len(residual))], abs=1e-7)
    x = image(subject)
    expected = evaluating(plain)(x)
    for out, reference in zip(evaluating(model)(x), expected):
        torch.testing.assert_close(out, reference)
    model.train()
    torch.manual_seed(0)
    first = model(x)
    torch.manual_seed(1)
    second = model(x)
    assert [o.shape for o in first] == [o.shape for o in expected]
    assert not torch.allclose(first[-1], second[-1])
