import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from dataset_converters.synthetic_coco import (CLASSES, make_synthetic_coco,
                                               synthetic_image)
from sharedbasis_mm.evaluation import compute_occlusion


@pytest.fixture(scope='module')
def synthetic_set(tmp_path_factory):
    out = tmp_path_factory.mktemp('synthetic')
    result = subprocess.run(
        [sys.executable, 'tools/dataset_converters/make_synthetic_coco.py',
         str(out),
         '--train', '24', '--val', '6', '--image-size', '96', '96',
         '--occlusion', '0.1', '0.5', '--seed', '3'],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return out


def test_output_loads_with_pycocotools(synthetic_set):
    coco = COCO(str(synthetic_set / 'annotations' / 'instances_train.json'))
    assert len(coco.getImgIds()) == 24
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(
        CLASSES)
    for ann in coco.loadAnns(coco.getAnnIds()):
        mask = coco.annToMask(ann)
        assert mask.shape == (96, 96) and mask.sum() > 0
        x, y, w, h = ann['bbox']
        ys, xs = np.nonzero(mask)
        # The polygon of the visible part lies inside its box.
        assert x <= xs.min() and xs.max() <= x + w
        assert y <= ys.min() and ys.max() <= y + h
    for img in coco.loadImgs(coco.getImgIds()):
        assert (synthetic_set / img['file_name']).is_file()


def test_occlusion_ratios_span_the_requested_range(synthetic_set):
    dataset = json.loads(
        (synthetic_set / 'annotations' / 'instances_train.json').read_text())
    ratios = compute_occlusion(dataset, instance_shape='box').image_ratios
    values = np.array([ratios[img['id']] for img in dataset['images']])
    stored = np.array([img['occlusion_ratio'] for img in dataset['images']])
    np.testing.assert_allclose(values, stored)
    assert values.min() >= 0.1 and values.max() <= 0.5
    # Spread over the range, not bunched at one end.
    assert values.min() < 0.2 and values.max() > 0.4


def test_deterministic_from_the_seed(tmp_path):
    first = synthetic_image(7, 'val', 2)
    again = synthetic_image(7, 'val', 2)
    other = synthetic_image(8, 'val', 2)
    np.testing.assert_array_equal(first[0], again[0])
    assert first[1] == again[1] and first[2] == again[2]
    assert not np.array_equal(first[0], other[0])
    a = make_synthetic_coco(str(tmp_path / 'a'), 'train', 3, seed=1,
                            image_size=(64, 64))
    b = make_synthetic_coco(str(tmp_path / 'b'), 'train', 3, seed=1,
                            image_size=(64, 64))
    assert a == b
    # drawn in 2 processes: the same annotations and the same pixels
    c = make_synthetic_coco(str(tmp_path / 'c'), 'train', 3, seed=1,
                            num_workers=2, image_size=(64, 64))
    assert c == a
    for record in a['images']:
        np.testing.assert_array_equal(
            cv2.imread(str(tmp_path / 'a' / record['file_name'])),
            cv2.imread(str(tmp_path / 'c' / record['file_name'])))


def test_heavy_occlusion_range():
    ratios = [
        synthetic_image(0, 'train', i, occlusion_range=(0.6, 0.9))[2]
        for i in range(5)
    ]
    assert all(0.6 <= r <= 0.9 for r in ratios)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="split must be one of"):
        make_synthetic_coco(str(tmp_path), 'trainval', 1)
    with pytest.raises(ValueError, match='num_workers must be >= 0'):
        make_synthetic_coco(str(tmp_path), 'train', 1, num_workers=-1)
    result = subprocess.run(
        [sys.executable, 'tools/dataset_converters/make_synthetic_coco.py',
         str(tmp_path),
         '--occlusion', '0.7', '0.2'],
        capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert '--occlusion must satisfy 0 <= LOW <= HIGH <= 1' in result.stderr
