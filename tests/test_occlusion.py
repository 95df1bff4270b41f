"""Occlusion ratios (sharedbasis_mm/evaluation/occlusion.py) and the subset
and plot tools."""
import csv
import json
import math

import numpy as np
import pycocotools.mask as mask_util
import pytest
from pycocotools.coco import COCO

from sharedbasis_mm.evaluation import (OcclusionBin, bin_label,
                                       check_bin_edges,
                                       compute_occlusion, image_overlaps,
                                       instance_rle, occlusion_bins,
                                       subset_dataset)
from tool_loading import load_tool


def rect(x0, y0, x1, y1):
    """Flat polygon of the rectangle [x0, x1) x [y0, y1)."""
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def ann(ann_id, image_id, bbox, segmentation=None, iscrowd=0,
        category_id=1):
    result = dict(
        id=ann_id,
        image_id=image_id,
        category_id=category_id,
        bbox=list(bbox),
        area=float(bbox[2] * bbox[3]),
        iscrowd=iscrowd)
    if segmentation is not None:
        result['segmentation'] = segmentation
    return result


def square_rle(height, width, x0, y0, size):
    mask = np.zeros((height, width), dtype=np.uint8, order='F')
    mask[y0:y0 + size, x0:x0 + size] = 1
    rle = mask_util.encode(mask)
    rle['counts'] = rle['counts'].decode()
    return rle


@pytest.fixture
def hand_dataset():
    """Images with overlaps computed by hand (expected values alongside).

    1: boxes A=[0,10)x[0,10), B=[5,15)x[0,10), C=[5,15)x[5,15) (no
       segmentation). O_A = 50 (B covers half of A, C inside B there),
       O_B = 50 (A) + 25 (C right of x=10) = 75, O_C = 50 (B's rows 5..9).
       The 25 pixels [5,10)x[5,10) are under all three instances and count
       three times: r = (50 + 75 + 50) / 300.
    2: L-shaped polygon D = [0,20)x[0,10) u [0,10)x[10,20) (300 px) and
       polygon E = [5,30)x[5,30) (625 px): D n E = [5,20)x[5,10) u
       [5,10)x[10,20) = 75 + 50; a crowd polygon over everything is left
       out: r = 250 / 925.
    3: RLE square [20,30)^2 and box [25,35)x[20,30): 50 px each, r = 0.5.
    4: no annotation; 5: crowd only (no ratio).
    6: one instance made of two overlapping polygons (175 px): r = 0.
    """
    images = [
        dict(id=i, file_name=f'{i}.jpg', height=40, width=50)
        for i in range(1, 7)
    ]
    annotations = [
        ann(1, 1, [0, 0, 10, 10]),
        ann(2, 1, [5, 0, 10, 10]),
        ann(3, 1, [5, 5, 10, 10]),
        ann(4, 2, [0, 0, 20, 20],
            [[0, 0, 20, 0, 20, 10, 10, 10, 10, 20, 0, 20]]),
        ann(5, 2, [5, 5, 25, 25], [rect(5, 5, 30, 30)]),
        ann(6, 2, [0, 0, 50, 40], [rect(0, 0, 50, 40)], iscrowd=1),
        ann(7, 3, [20, 20, 10, 10], square_rle(40, 50, 20, 20, 10)),
        ann(8, 3, [25, 20, 10, 10]),
        ann(9, 5, [0, 0, 50, 40], [rect(0, 0, 50, 40)], iscrowd=1),
        ann(10, 6, [0, 0, 15, 15],
            [rect(0, 0, 10, 10), rect(5, 5, 15, 15)]),
    ]
    categories = [dict(id=1, name='thing')]
    dataset = dict(
        images=images, annotations=annotations, categories=categories)
    image_ratios = {
        1: 175 / 300, 2: 250 / 925, 3: 0.5, 4: math.nan, 5: math.nan, 6: 0.0
    }
    instance_fractions = {
        1: 0.5, 2: 0.75, 3: 0.5, 4: 125 / 300, 5: 125 / 625, 7: 0.5, 8: 0.5,
        10: 0.0
    }
    return dataset, image_ratios, instance_fractions


def assert_same(actual: dict, expected: dict):
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        if math.isnan(value):
            assert math.isnan(actual[key]), key
        else:
            assert actual[key] == pytest.approx(value, abs=1e-12), key


@pytest.mark.parametrize('as_coco', [False, True])
def test_hand_computed_ratios(hand_dataset, as_coco):
    dataset, image_ratios, instance_fractions = hand_dataset
    coco = dataset
    if as_coco:
        coco = COCO()
        coco.dataset = dataset
        coco.createIndex()
    ratios = compute_occlusion(coco)
    assert_same(ratios.image_ratios, image_ratios)
    assert_same(ratios.instance_fractions, instance_fractions)
    assert ratios.num_box_instances == 4
    assert ratios.image_instances[2] == [4, 5]
    assert ratios.image_instances[5] == []


def test_hand_computed_areas(hand_dataset):
    dataset, _, _ = hand_dataset
    areas, overlaps = image_overlaps(dataset['annotations'][:3], 40, 50)
    assert areas.tolist() == [100, 100, 100]
    assert overlaps.tolist() == [50, 75, 50]
    areas, overlaps = image_overlaps([dataset['annotations'][-1]], 40, 50)
    assert areas.tolist() == [175] and overlaps.tolist() == [0]


def full_mask(segmentation, height, width):
    """Reference: the full-size mask as pycocotools' COCO.annToRLE makes
    it."""
    rles = mask_util.frPyObjects(segmentation, height, width)
    return mask_util.decode(mask_util.merge(rles)).astype(bool)


def decode(rle):
    return mask_util.decode(rle).astype(bool)


def test_instance_rle_is_cocos_mask():
    rng = np.random.default_rng(0)
    height, width = 37, 53
    images = [dict(id=1, height=height, width=width)]
    anns = []
    for ann_id in range(1, 101):
        polygons = []
        for _ in range(rng.integers(1, 3)):
            centre = rng.uniform((-5, -5), (width + 5, height + 5))
            points = centre + rng.uniform(-15, 15, (rng.integers(3, 9), 2))
            polygons.append(points.round(rng.integers(0, 3)).ravel().tolist())
        anns.append(ann(ann_id, 1, [0, 0, 1, 1], polygons))
    coco = COCO()
    coco.dataset = dict(images=images, annotations=anns, categories=[])
    coco.createIndex()
    for a in anns:
        np.testing.assert_array_equal(
            decode(instance_rle(a, height, width)), coco.annToMask(a) > 0)
    # a polygon of two points has no area and is skipped
    assert instance_rle(ann(1, 1, [0, 0, 1, 1], [[1, 1, 5, 5]]), 9, 9) is None


def test_integer_box_covers_its_pixels():
    rng = np.random.default_rng(1)
    for _ in range(100):
        x, y = rng.integers(-5, 45), rng.integers(-5, 35)
        w, h = rng.integers(1, 20, 2)
        expected = np.zeros((40 + 10, 50 + 10), dtype=bool)
        expected[y + 5:y + 5 + h, x + 5:x + 5 + w] = True
        mask = decode(instance_rle(dict(bbox=[x, y, w, h]), 40, 50))
        np.testing.assert_array_equal(mask, expected[5:45, 5:55])
    assert instance_rle(dict(bbox=[3, 3, 0, 5]), 40, 50) is None


def test_overlaps_match_pairwise_reference():
    """Count map against the definition O_i = A_i n (u_{j != i} A_j)."""
    rng = np.random.default_rng(2)
    height, width = 30, 40
    for _ in range(30):
        anns, masks = [], []
        for _ in range(rng.integers(1, 7)):
            x, y = rng.uniform(0, (width - 5, height - 5))
            w, h = rng.uniform(2, 20, 2)
            if rng.random() < 0.5:
                anns.append(dict(bbox=[x, y, w, h]))
                masks.append(full_mask(np.array([[x, y, w, h]]), height,
                                       width))
            else:
                points = (x, y) + rng.uniform(0, (w, h), (6, 2))
                polygon = [points.ravel().tolist()]
                anns.append(dict(bbox=[x, y, w, h], segmentation=polygon))
                masks.append(full_mask(polygon, height, width))
        masks = np.stack(masks)
        expected_overlaps = [
            np.count_nonzero(m & np.delete(masks, i, 0).any(0))
            for i, m in enumerate(masks)
        ]
        areas, overlaps = image_overlaps(anns, height, width)
        assert areas.tolist() == masks.sum((1, 2)).tolist()
        assert overlaps.tolist() == expected_overlaps


def test_uncompressed_rle_and_bad_input(hand_dataset):
    dataset, _, _ = hand_dataset
    mask = np.zeros((40, 50), dtype=np.uint8)
    mask[2:7, 3:9] = 1
    flat = mask.ravel(order='F')
    counts = np.diff(np.r_[0, np.flatnonzero(np.diff(flat)) + 1, flat.size])
    uncompressed = dict(size=[40, 50], counts=counts.tolist())
    np.testing.assert_array_equal(
        decode(instance_rle(dict(segmentation=uncompressed), 40, 50)), mask)

    with pytest.raises(ValueError, match='RLE of size'):
        instance_rle(dict(segmentation=dict(counts='', size=[4, 5])), 40, 50)
    bad = dict(dataset, annotations=[ann(1, 99, [0, 0, 1, 1])])
    with pytest.raises(ValueError, match='image 99'):
        compute_occlusion(bad)
    no_size = dict(dataset, images=[dict(id=1, file_name='1.jpg')],
                   annotations=[])
    with pytest.raises(ValueError, match='height and width'):
        compute_occlusion(no_size)


def test_image_bins(hand_dataset):
    dataset, _, _ = hand_dataset
    bins = occlusion_bins(compute_occlusion(dataset))
    assert [b.label for b in bins] == [
        '0-0.1', '0.1-0.2', '0.2-0.3', '0.3-0.4', '0.4-0.5', '0.5-0.6',
        '0.6-0.7', '0.7-0.8', '0.8-0.9', '0.9-1'
    ]
    members = {b.label: (b.img_ids, b.ann_ids) for b in bins if b.img_ids}
    assert members == {
        '0-0.1': ([6], [10]),
        '0.2-0.3': ([2], [4, 5]),
        '0.5-0.6': ([1, 3], [1, 2, 3, 7, 8]),
    }
    # an upper edge belongs to the next bin, the last edge to the last bin
    coarse = occlusion_bins(compute_occlusion(dataset), [0, 0.5, 1])
    assert [b.img_ids for b in coarse] == [[2, 6], [1, 3]]
    narrow = occlusion_bins(compute_occlusion(dataset), [0.1, 0.3])
    assert [b.img_ids for b in narrow] == [[2]]


def test_instance_bins_and_subsets(hand_dataset):
    dataset, _, _ = hand_dataset
    bins = occlusion_bins(compute_occlusion(dataset), [0, 0.25, 0.5, 1],
                          'instance')
    assert [(b.img_ids, b.ann_ids) for b in bins] == [
        ([2, 6], [5, 10]), ([2], [4]), ([1, 3], [1, 2, 3, 7, 8])]
    subset = subset_dataset(dataset, bins[1])
    assert [img['id'] for img in subset['images']] == [2]
    crowd = {a['id']: a['iscrowd'] for a in subset['annotations']}
    assert crowd == {4: 0, 5: 1, 6: 1}
    assert subset['categories'] == dataset['categories']
    # the input is left as it was
    assert dataset['annotations'][4]['iscrowd'] == 0

    image_bin = occlusion_bins(compute_occlusion(dataset))[5]
    subset = subset_dataset(dataset, image_bin)
    assert [a['id'] for a in subset['annotations']] == [1, 2, 3, 7, 8]
    assert all(a['iscrowd'] == 0 for a in subset['annotations'])
    assert subset_dataset(dataset, OcclusionBin(0, 1))['images'] == []


@pytest.mark.parametrize('edges', [[0.5], [0, 0.5, 0.5], [0.2, 0.1],
                                   [-0.1, 0.5], [0, 2], [0, math.nan]])
def test_bad_bin_edges(edges):
    with pytest.raises(ValueError, match='bin_edges'):
        check_bin_edges(edges)


def test_bad_level(hand_dataset):
    with pytest.raises(ValueError, match="level='box'"):
        occlusion_bins(compute_occlusion(hand_dataset[0]), level='box')


def test_occlusion_subsets_tool(hand_dataset, tmp_path, capsys):
    dataset, _, _ = hand_dataset
    ann_file = tmp_path / 'gt.json'
    ann_file.write_text(json.dumps(dataset))
    out_dir = tmp_path / 'subsets'
    load_tool('occlusion_subsets').main(
        [str(ann_file), str(out_dir), '--bin-edges', '0', '0.3', '0.6', '1'])
    with open(out_dir / 'summary.csv') as f:
        rows = list(csv.DictReader(f))
    assert [(r['bin'], r['images'], r['instances'], r['file']) for r in rows
            ] == [('0-0.3', '2', '3', 'gt_occ_0-0.3.json'),
                  ('0.3-0.6', '2', '5', 'gt_occ_0.3-0.6.json'),
                  ('0.6-1', '0', '0', '')]
    subset = json.loads((out_dir / 'gt_occ_0.3-0.6.json').read_text())
    assert [img['id'] for img in subset['images']] == [1, 3]
    assert not (out_dir / 'gt_occ_0.6-1.json').exists()
    assert 'bin 0.6-1 has no images' in capsys.readouterr().out


def write_metrics(path, scale, json_lines=False):
    metrics = {'coco/bbox_mAP': 0.5 * scale}
    for i in range(10):
        label = bin_label(i / 10, (i + 1) / 10)
        metrics[f'coco/occ/bbox_mAP_{label}'] = scale * (1 - i / 20)
        metrics[f'coco/occ/bbox_mAP_75_{label}'] = scale * (0.8 - i / 15)
        metrics[f'coco/occ/num_images_{label}'] = 3
    metrics['coco/occ/bbox_mAP_0.9-1'] = math.nan
    text = json.dumps(metrics)
    if json_lines:
        text = json.dumps({'coco/bbox_mAP': 0.1, 'step': 1}) + '\n' + text
    path.write_text(text)


def test_plot_occlusion_tool(tmp_path):
    tool = load_tool('plot_occlusion')
    ours, baseline = tmp_path / 'ours.json', tmp_path / 'base.json'
    write_metrics(ours, 1.0)
    write_metrics(baseline, 0.8, json_lines=True)
    curves = tool.occlusion_curves(tool.load_metrics(str(baseline)), 'bbox')
    assert [x for x, _ in curves['mAP']] == pytest.approx(
        [0.05 + i / 10 for i in range(10)])
    assert curves['mAP_75'][2][1] == pytest.approx(0.8 * (0.8 - 2 / 15))
    assert math.isnan(curves['mAP'][-1][1])

    out = tmp_path / 'fig' / 'occlusion'
    tool.main([str(ours), str(baseline), '--labels', 'ours', 'baseline',
               '--out', str(out)])
    png = tmp_path / 'fig' / 'occlusion.png'
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert png.stat().st_size > 10000
    assert b'<svg' in (tmp_path / 'fig' / 'occlusion.svg').read_bytes()

    empty = tmp_path / 'empty.json'
    empty.write_text(json.dumps({'coco/bbox_mAP': 0.3}))
    with pytest.raises(ValueError, match='no occlusion metrics'):
        tool.load_metrics(str(empty))
    with pytest.raises(ValueError, match="iou_type='segm'"):
        tool.occlusion_curves(tool.load_metrics(str(ours)), 'segm')


def test_instance_shape_box_uses_boxes_of_visible_masks():
    """Visible-part masks (COCO's) do not overlap; their boxes do."""
    from sharedbasis_mm.evaluation import compute_occlusion

    # A 10 x 10 square; a 10 x 10 square over its right half: the first
    # instance's visible part is its left 5 columns.
    left_visible = [[0, 0, 5, 0, 5, 10, 0, 10]]
    right = [[5, 0, 15, 0, 15, 10, 5, 10]]
    dataset = dict(
        images=[dict(id=1, height=20, width=20)],
        annotations=[
            dict(id=1, image_id=1, category_id=1, iscrowd=0,
                 bbox=[0, 0, 10, 10], segmentation=left_visible),
            dict(id=2, image_id=1, category_id=1, iscrowd=0,
                 bbox=[5, 0, 10, 10], segmentation=right),
        ],
        categories=[dict(id=1, name='a')])
    assert compute_occlusion(dataset).image_ratios[1] == 0
    boxes = compute_occlusion(dataset, instance_shape='box')
    # Each box has 50 of its 100 pixels under the other: r = 100 / 200.
    assert boxes.image_ratios[1] == pytest.approx(0.5)
    assert boxes.instance_fractions == {1: 0.5, 2: 0.5}
    with pytest.raises(ValueError, match="instance_shape='mask'"):
        compute_occlusion(dataset, instance_shape='mask')
