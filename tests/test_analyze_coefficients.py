import json
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.image import AxesImage
from mmengine.config import Config
from PIL import Image

from sharedbasis_mm.analysis import (build_model_from_config,
                                     coefficient_similarity, mean_off_diagonal,
                                     plot_coefficient_similarity,
                                     shared_basis_coefficients)
from tiny_shared_basis_net import TinySharedBasisNet
from tool_loading import load_tool

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_similarity_is_absolute_cosine_of_stacked_rows():
    generator = torch.Generator().manual_seed(0)
    coefficients = [torch.randn(4, 5, generator=generator),
                    torch.randn(3, 5, generator=generator)]
    similarity = coefficient_similarity(coefficients)
    rows = torch.cat(coefficients)
    expected = F.cosine_similarity(
        rows[:, None], rows[None], dim=-1).abs()
    assert similarity.shape == (7, 7)
    torch.testing.assert_close(similarity, expected)
    torch.testing.assert_close(similarity.diagonal(), torch.ones(7))


def test_similarity_of_orthogonal_and_repeated_coefficients():
    orthogonal = torch.linalg.qr(torch.randn(6, 6))[0]
    assert mean_off_diagonal(coefficient_similarity([orthogonal[:3],
                                                     orthogonal[3:]])) == \
        pytest.approx(0, abs=1e-6)
    row = torch.randn(1, 6)
    repeated = [row, -2 * row, 0.5 * row]  # the sign does not count
    assert mean_off_diagonal(coefficient_similarity(repeated)) == \
        pytest.approx(1, abs=1e-6)


def test_mean_off_diagonal():
    assert mean_off_diagonal(torch.tensor([[1., .2, .3], [.2, 1., .4],
                                           [.3, .4, 1.]])) == \
        pytest.approx(0.3)
    with pytest.raises(ValueError, match='square'):
        mean_off_diagonal(torch.ones(2, 3))
    with pytest.raises(ValueError, match='1 x 1'):
        mean_off_diagonal(torch.ones(1, 1))


def test_bad_coefficients_raise():
    with pytest.raises(ValueError, match='empty'):
        coefficient_similarity([])
    with pytest.raises(ValueError, match=r'\(4, 5\), \(3, 6\)'):
        coefficient_similarity([torch.ones(4, 5), torch.ones(3, 6)])


def test_coefficients_grouped_by_shared_basis():
    model = TinySharedBasisNet(channels=8, rank=6, num_blocks=2, num_groups=2)
    groups = shared_basis_coefficients(model)
    assert {basis: list(layers) for basis, layers in groups.items()} == {
        'blocks.0.basis.shared_basis': ['blocks.0', 'blocks.1'],
        'blocks.2.basis.shared_basis': ['blocks.2', 'blocks.3'],
    }
    for layers in groups.values():
        for name, coefficients in layers.items():
            assert coefficients.shape == (8, 6)
            weight = model.get_submodule(name).coefficients.weight
            assert torch.equal(coefficients, weight[:, :, 0, 0])


def test_plot_has_one_heat_map_with_layer_boundaries():
    similarity = coefficient_similarity([torch.randn(4, 3), torch.randn(2, 3)])
    figure = plot_coefficient_similarity(similarity, [4, 2], title='g')
    images = [a for a in figure.axes if any(
        isinstance(c, AxesImage) for c in a.get_children())]
    heat_map, = images
    assert heat_map.get_title() == 'g'
    assert len(heat_map.lines) == 2  # one horizontal, one vertical boundary
    with pytest.raises(ValueError, match='layer_sizes'):
        plot_coefficient_similarity(similarity, [4, 3])


def test_tool_writes_a_heat_map_per_basis(tmp_path):
    torch.manual_seed(0)
    model = TinySharedBasisNet(channels=8, rank=6, num_blocks=3, num_groups=2)
    checkpoint = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    config = tmp_path / 'tiny.py'
    config.write_text(
        "custom_imports = dict(imports=['tiny_shared_basis_net'])\n"
        "model = dict(type='TinySharedBasisNet', num_blocks=3, "
        "num_groups=2)\n")
    out_dir = tmp_path / 'similarity'
    summary = load_tool('analyze_coefficients').main(
        [str(config), checkpoint, '--out-dir', str(out_dir)])

    groups = shared_basis_coefficients(model)
    assert list(summary) == list(groups) and len(groups) == 2
    with open(out_dir / 'coefficient_similarity.json') as f:
        assert json.load(f) == summary
    for basis, layers in groups.items():
        expected = mean_off_diagonal(
            coefficient_similarity(list(layers.values())))
        assert summary[basis]['mean_off_diagonal'] == pytest.approx(expected)
        assert summary[basis]['num_vectors'] == 3 * 8
        assert summary[basis]['layers'] == list(layers)
        with Image.open(summary[basis]['heatmap']) as image:
            assert image.format == 'PNG'
            pixels = np.asarray(image.convert('L'))
        assert pixels.shape[0] > 100 and pixels.std() > 10


def test_tool_on_a_shared_basis_resnet_config(tmp_path):
    """ResNet56-S16U1 of the project's configs: one heat-map per residual
    group, over the 2 convolutions of its 8 blocks that share the basis."""
    config = osp.join(ROOT, 'configs', 'shared_basis',
                      'resnet56-s16u1_1xb128_cifar10.py')
    model = build_model_from_config(Config.fromfile(config))
    checkpoint = str(tmp_path / 'resnet56.pth')
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    summary = load_tool('analyze_coefficients').main(
        [config, checkpoint, '--out-dir', str(tmp_path / 'out')])
    assert list(summary) == [
        f'backbone.layer{i}.shared_basis' for i in (1, 2, 3)
    ]
    assert [group['num_vectors'] for group in summary.values()] == [
        16 * 16, 16 * 32, 16 * 64
    ]
    assert sorted(p.name for p in (tmp_path / 'out').glob('*.png')) == \
        sorted(f'{basis}.png' for basis in summary)
    for group in summary.values():
        assert 0 < group['mean_off_diagonal'] < 1
