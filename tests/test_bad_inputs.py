"""Bad inputs to the layers, hooks, metric and tools: each raises where it
enters, with the error type and a message naming the parameter (or file),
or warns with exact counts; none is silently accepted."""
import json
import os.path as osp
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from sharedbasis_mm.attention import TiedGCB, TiedSE
from sharedbasis_mm.backbones import (SharedBasisMobileNetV2,
                                      SharedBasisResNet, TiedResNet)
from sharedbasis_mm.evaluation import (CocoOcclusionRatioMetric,
                                       check_bin_edges)
from sharedbasis_mm.hooks import (EvaluationProgressHook, GradientFlowHook,
                                  OrthogonalityLossHook)
from sharedbasis_mm.layers import TiedBlockConv2d, TiedLinear
from sharedbasis_mm.utils import load_checkpoint_file
from sharedbasis_mm.utils.validation import (check_choice, check_file,
                                             check_int, check_number,
                                             check_writable_dir,
                                             load_json_file)
from tiny_shared_basis_net import TinySharedBasisNet, build_runner
from tool_loading import load_tool

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

NAN, INF = float('nan'), float('inf')

# (what is built, error type, the message names)
ARGUMENTS = {
    # layers
    'TBC blocks=True': (lambda: TiedBlockConv2d(8, 8, 3, blocks=True),
                        TypeError, 'blocks=True'),
    'TBC blocks=1.5': (lambda: TiedBlockConv2d(8, 8, 3, blocks=1.5),
                       TypeError, 'blocks=1.5'),
    'TBC blocks=0': (lambda: TiedBlockConv2d(8, 8, 3, blocks=0), ValueError,
                     'blocks=0'),
    "TBC groups='2'": (lambda: TiedBlockConv2d(8, 8, 3, groups='2'),
                       TypeError, "groups='2'"),
    'TBC in_channels=0': (lambda: TiedBlockConv2d(0, 8, 3), ValueError,
                          'in_channels=0'),
    'TBC blocks=3': (lambda: TiedBlockConv2d(8, 8, 3, blocks=3), ValueError,
                     'in_channels=8 must be divisible by blocks'),
    "TBC impl='im2col'": (lambda: TiedBlockConv2d(8, 8, 3, impl='im2col'),
                          ValueError, "impl='im2col'"),
    "TBC bias='yes'": (lambda: TiedBlockConv2d(8, 8, 3, bias='yes'),
                       TypeError, "bias='yes'"),
    'TFC blocks=True': (lambda: TiedLinear(8, 8, blocks=True), TypeError,
                        'blocks=True'),
    'TFC out_features=6 blocks=4': (lambda: TiedLinear(8, 6, blocks=4),
                                    ValueError, 'out_features=6'),
    'TiedSE ratio=0': (lambda: TiedSE(8, ratio=0), ValueError, 'ratio=0'),
    'TiedGCB ratio=nan': (lambda: TiedGCB(8, NAN), ValueError, 'ratio=nan'),
    "TiedGCB ratio='1/4'": (lambda: TiedGCB(8, '1/4'), TypeError,
                            "ratio='1/4'"),
    # hooks
    'loss_weight=nan': (lambda: OrthogonalityLossHook(loss_weight=NAN),
                        ValueError, 'loss_weight=nan'),
    'loss_weight=inf': (lambda: OrthogonalityLossHook(loss_weight=INF),
                        ValueError, 'loss_weight=inf'),
    'loss_weight=-1': (lambda: OrthogonalityLossHook(loss_weight=-1),
                       ValueError, 'loss_weight=-1'),
    'loss_weight=True': (lambda: OrthogonalityLossHook(loss_weight=True),
                         TypeError, 'loss_weight=True'),
    "loss_weight='1'": (lambda: OrthogonalityLossHook(loss_weight='1'),
                        TypeError, "loss_weight='1'"),
    "reduction='max'": (lambda: OrthogonalityLossHook(reduction='max'),
                        ValueError, "reduction='max'"),
    'log_interval=True': (lambda: OrthogonalityLossHook(log_interval=True),
                          TypeError, 'log_interval=True'),
    'interval=0': (lambda: GradientFlowHook(interval=0), ValueError,
                   'interval=0'),
    "interval='10'": (lambda: GradientFlowHook(interval='10'), TypeError,
                      "interval='10'"),
    'out_dir=3': (lambda: GradientFlowHook(out_dir=3), TypeError,
                  'out_dir=3'),
    "log_scale='yes'": (lambda: GradientFlowHook(log_scale='yes'),
                        TypeError, "log_scale='yes'"),
    'bar_width=True': (lambda: EvaluationProgressHook(bar_width=True),
                       TypeError, 'bar_width=True'),
    # metric
    "bin_edges=[0, 'a']": (
        lambda: CocoOcclusionRatioMetric(bin_edges=[0, 'a']), TypeError,
        r"bin_edges\[1\]='a'"),
    'bin_edges=[0, 1.5]': (
        lambda: CocoOcclusionRatioMetric(bin_edges=[0, 1.5]), ValueError,
        r'bin_edges\[1\]=1.5'),
    'bin_edges=[0, nan]': (
        lambda: CocoOcclusionRatioMetric(bin_edges=[0, NAN]), ValueError,
        r'bin_edges\[1\]=nan'),
    'bin_edges=[0.5, 0.2]': (
        lambda: CocoOcclusionRatioMetric(bin_edges=[0.5, 0.2]), ValueError,
        r'bin_edges=\[0.5, 0.2\]'),
    "bin_edges='0,1'": (lambda: CocoOcclusionRatioMetric(bin_edges='0,1'),
                        TypeError, "bin_edges='0,1'"),
    "occlusion_level='pixel'": (
        lambda: CocoOcclusionRatioMetric(occlusion_level='pixel'), ValueError,
        "occlusion_level='pixel'"),
    "instance_shape='mask'": (
        lambda: CocoOcclusionRatioMetric(instance_shape='mask'), ValueError,
        "instance_shape='mask'"),
}


@pytest.mark.parametrize('name', list(ARGUMENTS))
def test_bad_argument(name):
    build, error, match = ARGUMENTS[name]
    with pytest.raises(error, match=match):
        build()


@pytest.mark.parametrize('check, args, error, match', [
    (check_int, ('n', True), TypeError, r'n must be an integer, got n=True'),
    (check_int, ('n', 5, 0, 3), ValueError, r'n must be an integer >= 0 and '
     r'<= 3, got n=5'),
    (check_number, ('x', NAN), ValueError, 'x must be a finite number'),
    (check_number, ('x', 0, 0, None, False), ValueError, 'x must be a '
     'finite number > 0, got x=0'),
    (check_number, ('x', None), TypeError, r'got x=None \(NoneType\)'),
    (check_choice, ('mode', ['a'], ('a', 'b')), ValueError,
     r"mode must be one of \('a', 'b'\), got mode=\['a'\]"),
])
def test_validation_messages(check, args, error, match):
    with pytest.raises(error, match=match):
        check(*args)


def test_tbc_same_padding_is_reported_as_given():
    conv = TiedBlockConv2d(8, 8, 3, padding='same', blocks=2)
    assert conv.padding == 'same'
    assert conv(torch.randn(1, 8, 5, 5)).shape == (1, 8, 5, 5)
    assert TiedBlockConv2d(8, 8, 3, padding=(1, 2)).padding == (1, 2)


def test_edges_as_numpy_array_are_accepted():
    assert check_bin_edges(np.array([0, 0.5, 1])) == (0, 0.5, 1)


@pytest.mark.parametrize('build', [
    lambda: SharedBasisResNet(
        depth=18, base_channels=8, basis_cfg=dict(shared_rank=4)),
    lambda: TiedResNet(depth=50, base_channels=16, base_width=8),
    lambda: SharedBasisMobileNetV2(widen_factor=0.25),
], ids=['SharedBasisResNet', 'TiedResNet', 'SharedBasisMobileNetV2'])
def test_train_and_eval_return_the_backbone(build):
    """mmdet's ResNet.train and mmpretrain's MobileNetV2.train return
    None; ours return the module, as nn.Module's do."""
    backbone = build()
    assert backbone.eval() is backbone and not backbone.training
    assert backbone.train() is backbone and backbone.training


# hooks: side effects checked before the run, torch hooks removed after a
# failure


def test_unwritable_out_dir_stops_before_the_first_iteration(tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    out_dir = str(blocker / 'plots')
    runner = build_runner(
        TinySharedBasisNet(), str(tmp_path / 'work'),
        [dict(type='GradientFlowHook', interval=1, out_dir=out_dir)],
        max_iters=2)
    with pytest.raises(NotADirectoryError,
                       match=f'out_dir={out_dir!r} is not a folder'):
        runner.train()
    assert runner.iter == 0


class FailingNet(TinySharedBasisNet):
    """Fails in the forward pass of its second training iteration."""

    calls = 0

    def forward(self, inputs, labels, mode='tensor'):
        if mode == 'loss':
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError('forward failed')
        return super().forward(inputs, labels, mode)


def test_hooks_leave_model_and_optimizer_as_found_after_a_run_that_raised(
        tmp_path):
    """mmengine calls no hook when training raises: the torch hooks that the
    failed run left (the forward hook adding loss_orth, the optimizer step
    hook recording the gradients) are removed by the next run's
    before_train, which adds loss_orth once (a second forward hook would
    find the first one's loss_orth and refuse it), and its after_train
    leaves the model and the optimizer as found."""
    model = FailingNet()
    runner = build_runner(
        model, str(tmp_path), [
            dict(type='OrthogonalityLossHook'),
            dict(type='GradientFlowHook', interval=1)
        ],
        max_iters=3)
    with pytest.raises(RuntimeError, match='forward failed'):
        runner.train()
    assert runner.iter == 1
    # the same runner trains again, with loss_orth added once
    model.calls = 2
    runner.train()
    assert runner.iter == 3
    assert not model._forward_hooks
    assert not runner.optim_wrapper.optimizer._optimizer_step_pre_hooks
    assert 'parse_losses' not in vars(model)
    assert 'run_iter' not in vars(runner.train_loop)


# files


def write(path, content) -> str:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(
            content))
    return str(path)


BAD_ANNOTATIONS = {
    'empty': ('', 'is empty'),
    'malformed': ('{"images": [', 'is not valid JSON'),
    'binary': (b'\x89PNG\r\n\x1a\n\x00', 'is not valid JSON'),
    'results list': ([dict(image_id=1, category_id=1, bbox=[0, 0, 1, 1],
                           score=0.5)] * 3, 'holds a list of 3 entries'),
    'no images': (dict(annotations=[], categories=[]), r"has no \['images'\]"),
}


@pytest.mark.parametrize('kind', list(BAD_ANNOTATIONS))
def test_bad_annotation_file_in_metric_and_tool(kind, tmp_path):
    content, match = BAD_ANNOTATIONS[kind]
    path = write(tmp_path / 'ann.json', content)
    with pytest.raises(ValueError, match=match) as error:
        CocoOcclusionRatioMetric(ann_file=path)
    assert path in str(error.value)
    assert 'COCO annotation file' in str(error.value)
    with pytest.raises(ValueError, match=match) as error:
        load_tool('occlusion_subsets').main([path, str(tmp_path / 'out')])
    assert path in str(error.value)


def test_annotation_file_without_categories_in_metric(tmp_path):
    path = write(tmp_path / 'ann.json', dict(images=[], annotations=[]))
    with pytest.raises(ValueError, match=r"has no \['categories'\]"):
        CocoOcclusionRatioMetric(ann_file=path)


@pytest.mark.parametrize('content, error, match', [
    ('', ValueError, 'holds no occlusion metrics'),
    ('{"a": 1}\n{"b": ', ValueError, 'neither a JSON file nor a JSON-lines'),
    (None, FileNotFoundError, 'does not exist'),
])
def test_bad_occlusion_results_file(content, error, match, tmp_path):
    path = str(tmp_path / 'results.json')
    if content is not None:
        write(tmp_path / 'results.json', content)
    with pytest.raises(error, match=match) as raised:
        load_tool('plot_occlusion').load_metrics(path)
    assert path in str(raised.value)


def runner_checkpoint(tmp_path) -> str:
    runner = build_runner(TinySharedBasisNet(), str(tmp_path / 'run'), [],
                          max_iters=1)
    runner.train()
    return str(tmp_path / 'run' / 'iter_1.pth')


BAD_CHECKPOINTS = {
    'truncated': lambda good: open(good, 'rb').read()[:2000],
    'random bytes': lambda good: random.Random(0).randbytes(3000),
    'empty': lambda good: b'',
    'text': lambda good: b'{"state_dict": {}}',
}


def test_any_random_bytes_are_named_as_no_checkpoint(tmp_path):
    """torch's unpickler fails on random bytes in many ways (EOFError,
    IndexError, KeyError, ...): each gives the same error naming the file."""
    for seed in range(300):
        path = write(tmp_path / 'random.pth',
                     random.Random(seed).randbytes(3000))
        with pytest.raises(ValueError, match='cannot be loaded'):
            load_checkpoint_file(path)


@pytest.fixture(scope='module')
def good_checkpoint(tmp_path_factory):
    return runner_checkpoint(tmp_path_factory.mktemp('good'))


@pytest.mark.parametrize('kind', list(BAD_CHECKPOINTS))
def test_bad_checkpoint_file_in_loader_and_tools(kind, good_checkpoint,
                                                 tmp_path):
    path = write(tmp_path / 'bad.pth', BAD_CHECKPOINTS[kind](good_checkpoint))
    with pytest.raises(ValueError, match='cannot be loaded') as error:
        load_checkpoint_file(path)
    assert path in str(error.value)
    config = write(
        tmp_path / 'tiny.py',
        "custom_imports = dict(imports=['tiny_shared_basis_net'])\n"
        "model = dict(type='TinySharedBasisNet')\n")
    for tool, args in [
        ('convert_cls_checkpoint', [path, str(tmp_path / 'backbone.pth')]),
        ('analyze_coefficients', [config, path, '--out-dir',
                                  str(tmp_path / 'out')]),
    ]:
        with pytest.raises(SystemExit, match='cannot be loaded') as error:
            load_tool(tool).main(args)
        assert path in str(error.value)
    assert not osp.exists(tmp_path / 'backbone.pth')
    assert not osp.exists(tmp_path / 'out')


def test_missing_checkpoint_and_files(tmp_path):
    missing = str(tmp_path / 'missing.pth')
    with pytest.raises(FileNotFoundError, match='no checkpoint at'):
        load_checkpoint_file(missing)
    with pytest.raises(IsADirectoryError, match='is a folder'):
        check_file(str(tmp_path), 'checkpoint')
    with pytest.raises(FileNotFoundError, match='no COCO annotation file'):
        load_json_file(missing, 'COCO annotation file')
    blocker = write(tmp_path / 'blocker', '')
    with pytest.raises(NotADirectoryError, match='out_dir='):
        check_writable_dir('out_dir', osp.join(blocker, 'sub'))


def test_checkpoint_of_another_model_names_the_file(good_checkpoint,
                                                    tmp_path):
    config = write(
        tmp_path / 'tiny.py',
        "custom_imports = dict(imports=['tiny_shared_basis_net'])\n"
        "model = dict(type='TinySharedBasisNet', channels=16)\n")
    with pytest.raises(SystemExit, match='does not fit the model') as error:
        load_tool('analyze_coefficients').main(
            [config, good_checkpoint, '--out-dir', str(tmp_path / 'out')])
    assert good_checkpoint in str(error.value)


@pytest.mark.parametrize('script,args', [
    ('dist_train.sh', ['CONFIG', 'two']),
    ('dist_test.sh', ['CONFIG', 'CHECKPOINT', '0']),
])
def test_launcher_names_a_bad_process_count(script, args):
    result = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', script)] + args,
        capture_output=True,
        text=True)
    assert result.returncode == 2
    assert (f"NUM_PROCESSES must be a positive integer, got '{args[-1]}'"
            in result.stderr)


# (tool, arguments, the message after "argument OPTION: ")
BAD_TOOL_OPTIONS = [
    ('benchmark_backbones', ['--batch-sizes', '1', '0'],
     "--batch-sizes: expected an integer >= 1, got '0'"),
    ('benchmark_backbones', ['--input-size', 'big'],
     "--input-size: expected an integer >= 1, got 'big'"),
    ('benchmark_backbones', ['--threads', '0'],
     "--threads: expected an integer >= 1, got '0'"),
    ('benchmark_hook', ['--iters', '0'],
     "--iters: expected an integer >= 1, got '0'"),
    ('benchmark_hook', ['--warmup', '-1'],
     "--warmup: expected an integer >= 0, got '-1'"),
    ('benchmark_hook', ['--image-size', '2.5'],
     "--image-size: expected an integer >= 1, got '2.5'"),
    ('benchmark_occlusion', ['--num-classes', '0'],
     "--num-classes: expected an integer >= 1, got '0'"),
    ('benchmark_occlusion', ['--height', '-480'],
     "--height: expected an integer >= 1, got '-480'"),
    ('benchmark_tbc', ['--blocks', '4', '0'],
     "--blocks: expected an integer >= 1, got '0'"),
    ('benchmark_tbc', ['--shapes', '256x0x28'],
     "--shapes: expected an input shape CxHxW of positive integers such "
     "as 2048x56x56, got '256x0x28'"),
    ('benchmark_tbc', ['--repeats', '0'],
     "--repeats: expected an integer >= 1, got '0'"),
    ('benchmark_tbc', ['--block-time', '0'],
     "--block-time: expected a finite number > 0, got '0'"),
    ('benchmark_tbc', ['--block-time', 'nan'],
     "--block-time: expected a finite number > 0, got 'nan'"),
    ('fuse_model', ['CONFIG', 'CKPT', '--input-shape', '2', '3', '0', '224'],
     "--input-shape: expected an integer >= 1, got '0'"),
    ('fuse_model', ['CONFIG', 'CKPT', '--atol=-1e-4'],
     "--atol: expected a finite number >= 0, got '-1e-4'"),
    ('fuse_model', ['CONFIG', 'CKPT', '--rtol', 'inf'],
     "--rtol: expected a finite number >= 0, got 'inf'"),
    ('make_synthetic_coco', ['OUT', '--train', '-1'],
     "--train: expected an integer >= 0, got '-1'"),
    ('make_synthetic_coco', ['OUT', '--image-size', '0', '64'],
     "--image-size: expected an integer >= 1, got '0'"),
]


@pytest.mark.parametrize('tool,args,message', BAD_TOOL_OPTIONS,
                         ids=[f'{t}{a[-2:]}' for t, a, _ in BAD_TOOL_OPTIONS])
def test_bad_numeric_option_of_a_tool_is_named(tool, args, message,
                                                monkeypatch, capsys):
    monkeypatch.setattr(sys, 'argv', [f'{tool}.py', *args])
    with pytest.raises(SystemExit) as exit_:
        load_tool(tool).parse_args()
    assert exit_.value.code == 2
    assert f'error: argument {message}' in capsys.readouterr().err


def test_synthetic_objects_out_of_order_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, 'argv', [
        'make_synthetic_coco.py',
        str(tmp_path), '--train', '1', '--val', '0', '--objects', '3', '1'
    ])
    with pytest.raises(SystemExit, match=r'num_objects must be \(least, '
                       r'most\) with 1 <= least <= most, got '
                       r'num_objects=\(3, 1\)'):
        load_tool('make_synthetic_coco').main()
    assert not (tmp_path / 'train').exists()
