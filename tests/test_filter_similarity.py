"""Filter similarity by guided back-propagation (Tied Block Convolution,
Figures 1 and 9): the computation against hand-built references, and the
tool on a ResNet-50 and a TiedResNet-50 config."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config

from sharedbasis_mm.analysis import build_model_from_config
from sharedbasis_mm.analysis.filter_similarity import (
    GuidedReLU, GuidedReLUFunction, convolution_names, filter_similarity, generated_images,
    guided_backprop_patterns, guided_relus, preprocess_images, sample_filters,
    similarity_histogram, similarity_summary)
from sharedbasis_mm.layers import TiedBlockConv2d
from sharedbasis_mm.utils.checkpoint import first_unfit_key
from tool_loading import load_tool

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RESNET50 = osp.join(ROOT, 'configs/baselines/resnet50_8xb32_in1k.py')
TIEDRESNET50 = osp.join(ROOT, 'configs/tied/tiedresnet50_8xb32_in1k.py')
LAYER = 'backbone.layer1.0.conv2'


def conv1x1(weight: torch.Tensor) -> nn.Conv2d:
    """A 1 x 1 convolution without bias holding ``weight`` (out, in)."""
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], 1, bias=False)
    conv.weight.data.copy_(weight[:, :, None, None])
    return conv


def test_guided_relu_passes_positive_gradients_of_positive_inputs():
    x = torch.tensor([-1., 2., 3., 0.5, 0.], requires_grad=True)
    y = GuidedReLUFunction.apply(x)
    y.backward(torch.tensor([5., -4., 6., 1., 2.]))
    assert torch.equal(y.detach(), torch.tensor([0., 2., 3., 0.5, 0.]))
    assert torch.equal(x.grad, torch.tensor([0., 0., 6., 1., 0.]))


def test_guided_relus_replace_and_restore_every_relu_module():
    relu = nn.ReLU(inplace=True)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), relu,
                          nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU()))
    with guided_relus(model) as replaced:
        assert replaced == 2
        assert isinstance(model[1], GuidedReLU)
        assert isinstance(model[2][1], GuidedReLU)
    assert model[1] is relu and type(model[2][1]) is nn.ReLU


def test_patterns_equal_the_hand_derived_guided_gradient():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(4, 3, generator=generator)
    b = torch.randn(2, 4, generator=generator)
    model = nn.Sequential(conv1x1(a), nn.ReLU(), conv1x1(b))
    x = torch.randn(2, 3, 5, 5, generator=generator)
    patterns = guided_backprop_patterns(model, x, {'2': [0, 1]})['2']
    # response_c = sum_p b_c . relu(a x_p); guided: at each pixel p the
    # gradient reaching the ReLU is b_c, kept where > 0 and where a x_p > 0
    active = (torch.einsum('oi,nihw->nohw', a, x) > 0).float()
    for c in range(2):
        kept = b[c].clamp(min=0)[None, :, None, None] * active
        expected = torch.einsum('oi,nohw->nihw', a, kept)
        torch.testing.assert_close(patterns[:, c], expected.flatten(1))


def test_identical_filters_have_similarity_one():
    generator = torch.Generator().manual_seed(1)
    layer = nn.Conv2d(4, 8, 3, padding=1)
    layer.weight.data.copy_(
        torch.randn(1, 4, 3, 3, generator=generator).expand(8, -1, -1, -1))
    layer.bias.data.fill_(0.1)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), layer)
    images = torch.randn(3, 3, 16, 16, generator=generator)
    result = filter_similarity(model, images, ['2'], num_filters=8)['2']
    assert result.filters == list(range(8))
    assert result.num_images == 3
    summary = similarity_summary(result)
    assert summary['mean'] == pytest.approx(1.0, abs=1e-3)
    torch.testing.assert_close(result.similarity, torch.ones(8, 8),
                               atol=1e-3, rtol=0)


def test_orthogonal_1x1_filters_on_a_linear_input_have_similarity_zero():
    generator = torch.Generator().manual_seed(2)
    q = torch.linalg.qr(torch.randn(3, 3, generator=generator))[0]
    model = nn.Sequential(conv1x1(q))  # on the image: a linear input
    images = torch.randn(2, 3, 6, 6, generator=generator)
    patterns = guided_backprop_patterns(model, images, {'0': [0, 1, 2]})['0']
    # hand-built: the pattern of filter c is its weight at every pixel
    for c in range(3):
        expected = q[c][:, None, None].expand(3, 6, 6).flatten()
        torch.testing.assert_close(patterns[0, c], expected)
    result = filter_similarity(model, images, ['0'])['0']
    torch.testing.assert_close(result.similarity, torch.eye(3), atol=1e-6,
                               rtol=0)
    assert similarity_summary(result)['mean'] == pytest.approx(0, abs=1e-6)


def test_histogram_counts_each_pair_once_and_sums_to_one():
    similarity = torch.tensor([[1.0, 0.3, -0.5, 0.32],
                               [0.3, 1.0, 0.9, 1.0],
                               [-0.5, 0.9, 1.0, 0.0],
                               [0.32, 1.0, 0.0, 1.0]])
    histogram, edges = similarity_histogram(similarity, bins=4)
    assert edges.tolist() == [-1, -0.5, 0, 0.5, 1]
    # pairs: 0.3, -0.5, 0.32, 0.9, 1.0, 0.0
    assert histogram.tolist() == pytest.approx([0, 1 / 6, 3 / 6, 2 / 6])
    assert histogram.sum() == pytest.approx(1)


def test_convolution_names_are_the_outermost_convolutions():
    model = nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(),
                          TiedBlockConv2d(8, 8, 3, padding=1, blocks=2))
    assert convolution_names(model) == ['0', '2']
    with pytest.raises(ValueError, match=r"'2\.conv' is not a convolution "
                       r'.*2 convolutions are: 0, 2'):
        filter_similarity(model, torch.zeros(1, 3, 8, 8), ['2.conv'])


def test_tied_layer_patterns_are_per_image():
    # a TBC folds its blocks into the batch: the patterns must still be
    # those of each image alone
    generator = torch.Generator().manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                          TiedBlockConv2d(8, 8, 3, padding=1, blocks=2))
    images = torch.randn(2, 3, 8, 8, generator=generator)
    both = guided_backprop_patterns(model, images, {'2': [1, 6]})['2']
    for n in range(2):
        alone = guided_backprop_patterns(model, images[n:n + 1],
                                         {'2': [1, 6]})['2']
        torch.testing.assert_close(both[n], alone[0])


def test_sampled_filters_are_distinct_sorted_and_seeded():
    filters = sample_filters(256, 64, seed=5)
    assert len(set(filters)) == 64 and filters == sorted(filters)
    assert max(filters) < 256
    assert filters == sample_filters(256, 64, seed=5)
    assert filters != sample_filters(256, 64, seed=6)
    assert sample_filters(16, 64) == list(range(16))


def test_generated_images_are_seeded_and_in_range():
    images = generated_images(2, 32, seed=4)
    assert images.shape == (2, 3, 32, 32)
    assert 0 <= images.min() and images.max() <= 255
    assert images.std() > 10
    assert torch.equal(images, generated_images(2, 32, seed=4))


def test_first_unfit_key():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    state = model.state_dict()
    assert first_unfit_key(model, state) is None
    assert first_unfit_key(model, {**state, '0.weight': torch.zeros(
        5, 3, 1, 1)}) == ("'0.weight' has shape (5, 3, 1, 1) in the "
                          'checkpoint and (4, 3, 1, 1) in the model')
    del state['1.bias']
    assert first_unfit_key(model, state) == \
        "'1.bias' is missing from the checkpoint"


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """A ResNet-50 and a TiedResNet-50 classifier and their checkpoints."""
    folder = tmp_path_factory.mktemp('filter_similarity')
    models = {}
    for name, config in (('resnet', RESNET50), ('tied', TIEDRESNET50)):
        model = build_model_from_config(Config.fromfile(config))
        path = str(folder / f'{name}.pth')
        torch.save(dict(state_dict=model.state_dict()), path)
        models[name] = (model, path)
    return models


def run_tool(*args: str):
    return load_tool('analysis_tools/analyze_filter_similarity').main(
        list(args))


def test_tool_on_resnet50_and_tiedresnet50(checkpoints, tmp_path, capsys):
    (resnet, resnet_path), (tied, tied_path) = (checkpoints['resnet'],
                                                checkpoints['tied'])
    out_dir = str(tmp_path / 'out')
    curves = run_tool(RESNET50, resnet_path, TIEDRESNET50, tied_path,
                      '--layers', LAYER, 'backbone.layer2.0.conv2',
                      '--num-images', '2', '--num-filters', '4',
                      '--image-size', '32', '--out-dir', out_dir)
    assert 'no --images: using 2 smooth random images of 32 x 32' in \
        capsys.readouterr().out
    labels = ['resnet50_8xb32_in1k', 'tiedresnet50_8xb32_in1k']
    assert list(curves) == labels
    # layer1's 3 x 3 stage: 64 channels, TiedResNet-50's 4 splits x 32
    for label, model, width in zip(labels, (resnet, tied), (64, 128)):
        with open(osp.join(out_dir, label, 'filter_similarity.json')) as f:
            summary = json.load(f)
        assert summary == curves[label]
        assert list(summary) == [LAYER, 'backbone.layer2.0.conv2']
        # the tool's model holds the checkpoint's weights: it agrees with
        # the very model the checkpoint was made from
        reference = filter_similarity(
            model, preprocess_images(model, generated_images(2, 32)),
            [LAYER], num_filters=4)[LAYER]
        entry = summary[LAYER]
        assert entry['mean'] == pytest.approx(
            similarity_summary(reference)['mean'], abs=1e-5)
        assert entry['images'].startswith('generated')
        assert entry['num_filters'] == 4 and entry['num_images'] == 2
        assert entry['filters'] == sample_filters(width, 4)
        assert sum(entry['histogram']) == pytest.approx(1)
        assert len(entry['bin_edges']) == 41
    # --compare draws an earlier run as another curve
    again = run_tool(TIEDRESNET50, tied_path, '--layers', LAYER,
                     '--num-images', '1', '--num-filters', '4',
                     '--image-size', '32', '--out-dir',
                     str(tmp_path / 'again'), '--compare',
                     osp.join(out_dir, labels[0], 'filter_similarity.json'))
    assert list(again) == [labels[1], labels[0]]
    assert again[labels[0]][LAYER] == curves[labels[0]][LAYER]
    assert osp.isfile(tmp_path / 'again' / 'filter_similarity.json')


def test_tool_refuses_unknown_layer_and_unfit_checkpoint(checkpoints,
                                                         tmp_path, capsys):
    _, resnet_path = checkpoints['resnet']
    for models, options in (([RESNET50, resnet_path], ['--num-filters', '1']),
                            ([RESNET50, resnet_path, RESNET50], [])):
        with pytest.raises(SystemExit):
            run_tool(*models, '--layers', LAYER, '--out-dir', str(tmp_path),
                     *options)
    err = capsys.readouterr().err
    assert '--num-filters must be an integer >= 2, got --num-filters=1' in err
    assert 'expected CONFIG CHECKPOINT pairs, got an odd number' in err
    with pytest.raises(SystemExit, match=r"layer 'backbone\.nope' is not a "
                       r'convolution .*backbone\.conv1, '
                       r'backbone\.layer1\.0\.conv1'):
        run_tool(RESNET50, resnet_path, '--layers', 'backbone.nope',
                 '--num-images', '1', '--image-size', '32', '--out-dir',
                 str(tmp_path))
    with pytest.raises(SystemExit, match=r'does not fit the model: '
                       r"'backbone\.layer1\.0\.conv1\.conv\.weight' is "
                       'missing from the checkpoint'):
        run_tool(TIEDRESNET50, resnet_path, '--layers', LAYER,
                 '--out-dir', str(tmp_path))


def test_images_are_preprocessed_as_the_config_says(checkpoints):
    model, _ = checkpoints['resnet']
    images = generated_images(2, 32)
    # mmpretrain's ImageNet settings: BGR to RGB, then mean and std
    mean = torch.tensor([123.675, 116.28, 103.53])[:, None, None]
    std = torch.tensor([58.395, 57.12, 57.375])[:, None, None]
    torch.testing.assert_close(preprocess_images(model, images),
                               (images.flip(1) - mean) / std)
