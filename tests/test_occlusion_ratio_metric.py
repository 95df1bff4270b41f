"""CocoOcclusionRatioMetric against mmdet's CocoMetric and pycocotools'
COCOeval on the subsets written by tools/analysis_tools/occlusion_subsets.py."""
import copy
import csv
import json
import math
import uuid

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from mmdet.evaluation import CocoMetric
from mmdet.registry import METRICS as MMDET_METRICS
from mmengine.logging import MMLogger
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from sharedbasis_mm.evaluation import (CocoOcclusionRatioMetric,
                                       compute_occlusion, occlusion_bins)
from tool_loading import load_tool

HEIGHT, WIDTH = 48, 64
CLASSES = ('a', 'b', 'c')
COCO_KEYS = ('mAP', 'mAP_50', 'mAP_75')


def polygon_around(rng, x0, y0, x1, y1):
    """A hexagon in the box (a rectangle with two corners cut)."""
    cut = rng.uniform(0, 0.4) * min(x1 - x0, y1 - y0)
    return [x0 + cut, y0, x1, y0, x1, y1 - cut, x1 - cut, y1, x0, y1, x0,
            y0 + cut]


def polygon_box(polygon):
    xs, ys = polygon[0::2], polygon[1::2]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]


@pytest.fixture(scope='module')
def dataset():
    """16 images of clustered polygon instances, one image without
    annotation and one with a crowd region only."""
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for img_id in range(1, 19):
        images.append(
            dict(id=img_id, file_name=f'{img_id}.jpg', height=HEIGHT,
                 width=WIDTH))
        if img_id == 17:
            continue
        num = 1 if img_id == 18 else int(rng.integers(1, 7))
        centre = rng.uniform((16, 12), (48, 36))
        spread = rng.uniform(1, 16)
        for _ in range(num):
            cx, cy = centre + rng.normal(0, spread, 2)
            w, h = rng.uniform(6, 24, 2)
            x0, y0 = np.clip((cx - w / 2, cy - h / 2), 0,
                             (WIDTH - 4, HEIGHT - 4))
            x1, y1 = np.clip((x0 + w, y0 + h), 0, (WIDTH, HEIGHT))
            polygon = [round(v * 2) / 2 for v in polygon_around(
                rng, x0, y0, x1, y1)]
            area = mask_util.area(
                mask_util.frPyObjects([polygon], HEIGHT, WIDTH)[0])
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=img_id,
                    category_id=int(rng.integers(1, 4)),
                    segmentation=[polygon],
                    bbox=polygon_box(polygon),
                    area=float(area),
                    iscrowd=int(img_id == 18)))
    categories = [dict(id=i + 1, name=name) for i, name in enumerate(CLASSES)]
    return dict(images=images, annotations=annotations, categories=categories)


def make_predictions(dataset, seed=1, with_masks=True):
    """mmdet data samples: jittered ground truth plus false positives, with
    float32-exact boxes and scores."""
    rng = np.random.default_rng(seed)
    samples = []
    for img in dataset['images']:
        polygons, labels = [], []
        for ann in dataset['annotations']:
            if (ann['image_id'] != img['id'] or ann['iscrowd']
                    or rng.random() > 0.8):
                continue
            points = np.asarray(ann['segmentation'][0]).reshape(-1, 2)
            points = points + rng.integers(-3, 4, 2) / 2
            polygons.append(
                np.clip(points, 0, (WIDTH, HEIGHT)).ravel().tolist())
            labels.append(ann['category_id'] - 1 if rng.random() < 0.9 else
                          int(rng.integers(3)))
        for _ in range(rng.integers(0, 3)):
            x0, y0 = rng.integers(0, (WIDTH - 10, HEIGHT - 10))
            polygons.append(
                polygon_around(rng, x0, y0, x0 + rng.integers(4, 20),
                               y0 + rng.integers(4, 20)))
            labels.append(int(rng.integers(3)))
        boxes = [polygon_box(p) for p in polygons]
        pred = dict(
            bboxes=torch.tensor([[x, y, x + w, y + h]
                                 for x, y, w, h in boxes],
                                dtype=torch.float32).reshape(-1, 4),
            scores=torch.tensor(rng.uniform(0.05, 1, len(polygons)),
                                dtype=torch.float32),
            labels=torch.tensor(labels, dtype=torch.long))
        if with_masks:
            pred['masks'] = [
                mask_util.frPyObjects([p], HEIGHT, WIDTH)[0]
                for p in polygons
            ]
        samples.append(
            dict(img_id=img['id'], ori_shape=(HEIGHT, WIDTH),
                 pred_instances=pred))
    return samples


def coco_results(samples, iou_type):
    """The predictions in pycocotools' results format (segm without box)."""
    results = []
    for sample in samples:
        pred = sample['pred_instances']
        for i, (x0, y0, x1, y1) in enumerate(pred['bboxes'].tolist()):
            det = dict(
                image_id=sample['img_id'],
                category_id=int(pred['labels'][i]) + 1,
                score=float(pred['scores'][i]))
            if iou_type == 'bbox':
                det['bbox'] = [x0, y0, x1 - x0, y1 - y0]
            else:
                rle = dict(pred['masks'][i])
                if isinstance(rle['counts'], bytes):
                    rle['counts'] = rle['counts'].decode()
                det['segmentation'] = rle
            results.append(det)
    return results


def cocoeval_stats(ann_file, results, iou_type):
    """pycocotools' COCOeval with default parameters on one annotation
    file: AP, AP50, AP75."""
    coco_gt = COCO(ann_file)
    dets = [copy.deepcopy(d) for d in results if d['image_id'] in
            coco_gt.imgs]
    coco_eval = COCOeval(coco_gt, coco_gt.loadRes(dets), iou_type)
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    return [float(f'{round(v, 3)}') for v in coco_eval.stats[:3]]


def evaluate(metric, samples, classes=CLASSES):
    metric.dataset_meta = dict(classes=classes)
    metric.process({}, copy.deepcopy(samples))
    return metric.evaluate(len(samples))


def new_logger(tmp_path):
    """A fresh current MMLogger writing to a file; returns the file."""
    log_file = tmp_path / 'log.txt'
    MMLogger.get_instance(f'occ-{uuid.uuid4()}', log_file=str(log_file))
    return log_file


@pytest.fixture
def ann_file(dataset, tmp_path):
    path = tmp_path / 'gt.json'
    path.write_text(json.dumps(dataset))
    return str(path)


@pytest.mark.parametrize('level', ['image', 'instance'])
def test_equals_coco_metric_and_cocoeval_on_subsets(dataset, ann_file,
                                                    tmp_path, level):
    samples = make_predictions(dataset)
    metrics = ['bbox', 'segm']
    results = evaluate(
        CocoOcclusionRatioMetric(
            ann_file=ann_file, metric=metrics, occlusion_level=level),
        samples)
    reference = evaluate(CocoMetric(ann_file=ann_file, metric=metrics),
                         samples)
    assert reference and {k: v for k, v in results.items()
                          if '/occ/' not in k} == reference

    out_dir = tmp_path / 'subsets'
    load_tool('occlusion_subsets').main(
        [ann_file, str(out_dir), '--level', level])
    with open(out_dir / 'summary.csv') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10
    evaluated = 0
    for row in rows:
        label = row['bin']
        assert results[f'coco/occ/num_images_{label}'] == int(row['images'])
        assert results[f'coco/occ/num_instances_{label}'] == int(
            row['instances'])
        for iou_type in metrics:
            values = [results[f'coco/occ/{iou_type}_{key}_{label}']
                      for key in COCO_KEYS]
            if not row['file']:
                assert all(math.isnan(v) for v in values)
                continue
            evaluated += 1
            assert values == cocoeval_stats(
                str(out_dir / row['file']), coco_results(samples, iou_type),
                iou_type)
    # every bin with images, for both IoU types
    bins = occlusion_bins(compute_occlusion(dataset), level=level)
    assert evaluated == len(metrics) * sum(bool(b.img_ids) for b in bins)
    assert evaluated >= 8


def test_hand_computed_bins(tmp_path):
    """A = [0,20)x[0,20), B = [10,50)x[0,20): A is half occluded, B a
    quarter; image ratio 400 / 1200. One detection, exactly on B."""
    dataset = dict(
        images=[dict(id=1, file_name='1.jpg', height=30, width=60)],
        annotations=[
            dict(id=1, image_id=1, category_id=1, bbox=[0, 0, 20, 20],
                 area=400, iscrowd=0),
            dict(id=2, image_id=1, category_id=1, bbox=[10, 0, 40, 20],
                 area=800, iscrowd=0)
        ],
        categories=[dict(id=1, name='thing')])
    ann_file = tmp_path / 'gt.json'
    ann_file.write_text(json.dumps(dataset))
    samples = [
        dict(img_id=1, ori_shape=(30, 60), pred_instances=dict(
            bboxes=torch.tensor([[10., 0., 50., 20.]]),
            scores=torch.tensor([0.9]), labels=torch.tensor([0])))
    ]
    instance = evaluate(
        CocoOcclusionRatioMetric(ann_file=str(ann_file), bin_edges=[0, 0.4, 1],
                             occlusion_level='instance'), samples, ('thing',))
    # bin 0-0.4 holds B (A ignored as crowd): found; bin 0.4-1 holds A: missed
    for key in COCO_KEYS:
        assert instance[f'coco/occ/bbox_{key}_0-0.4'] == 1.0
        assert instance[f'coco/occ/bbox_{key}_0.4-1'] == 0.0
    assert instance['coco/occ/num_instances_0.4-1'] == 1
    image = evaluate(
        CocoOcclusionRatioMetric(
            ann_file=str(ann_file), bin_edges=[0, 0.4, 1]),
        samples, ('thing',))
    # both in bin 0-0.4 (r = 1/3): recall 0.5 at precision 1, i.e. 51 of
    # COCO's 101 recall thresholds
    assert image['coco/occ/bbox_mAP_0-0.4'] == round(51 / 101, 3)
    assert image['coco/occ/num_instances_0-0.4'] == 2
    assert math.isnan(image['coco/occ/bbox_mAP_0.4-1'])


def test_unannotated_crowd_only_and_empty_bins(dataset, ann_file, tmp_path):
    log_file = new_logger(tmp_path)
    results = evaluate(
        CocoOcclusionRatioMetric(ann_file=ann_file, metric='bbox'),
        make_predictions(dataset))
    ratios = compute_occlusion(dataset)
    assert math.isnan(ratios.image_ratios[17])
    assert math.isnan(ratios.image_ratios[18])
    binned = sum(v for k, v in results.items()
                 if k.startswith('coco/occ/num_images_'))
    assert binned == len(dataset['images']) - 2
    log = log_file.read_text()
    assert '2 images have no occlusion ratio' in log
    empty = [
        b.label for b in occlusion_bins(ratios) if not b.img_ids
    ]
    assert empty
    for label in empty:
        assert results[f'coco/occ/num_images_{label}'] == 0
        assert math.isnan(results[f'coco/occ/bbox_mAP_{label}'])
        assert f'Occlusion bin {label} has no images' in log
    assert '| occlusion (image) | images | instances | bbox_mAP' in log


def test_predictions_without_masks(dataset, ann_file, tmp_path):
    log_file = new_logger(tmp_path)
    samples = make_predictions(dataset, with_masks=False)
    results = evaluate(
        CocoOcclusionRatioMetric(ann_file=ann_file, metric=['bbox', 'segm']),
        samples)
    assert not any('segm' in key for key in results)
    assert "'segm' is not evaluated: the predictions carry no masks" in (
        log_file.read_text())
    reference = evaluate(CocoMetric(ann_file=ann_file, metric='bbox'),
                         samples)
    assert {k: v for k, v in results.items() if '/occ/' not in k
            } == reference
    assert any('/occ/bbox_mAP_' in key for key in results)


def test_annotations_without_segmentation(dataset, tmp_path):
    boxes_only = copy.deepcopy(dataset)
    for ann in boxes_only['annotations']:
        del ann['segmentation']
    ann_file = tmp_path / 'boxes.json'
    ann_file.write_text(json.dumps(boxes_only))
    log_file = new_logger(tmp_path)
    samples = make_predictions(dataset)
    results = evaluate(
        CocoOcclusionRatioMetric(
            ann_file=str(ann_file), metric=['bbox', 'segm']),
        samples)
    log = log_file.read_text()
    assert 'ground-truth annotations have no segmentation' in log
    instances = sum(not a['iscrowd'] for a in boxes_only['annotations'])
    assert f'or as its box for the {instances} without segmentation' in log
    assert not any('segm' in key for key in results)
    bins = occlusion_bins(compute_occlusion(boxes_only))
    assert [results[f'coco/occ/num_images_{b.label}'] for b in bins
            ] == [len(b.img_ids) for b in bins]
    # boxes overlap more than the hexagons inside them
    assert bins != occlusion_bins(compute_occlusion(dataset))


def test_ground_truth_from_data_samples(dataset, ann_file):
    """Without ann_file the ground truth comes from the data samples, as in
    CocoMetric."""
    samples = make_predictions(dataset)
    for sample in samples:
        sample['instances'] = [
            dict(bbox=[x, y, x + w, y + h], bbox_label=a['category_id'] - 1,
                 ignore_flag=a['iscrowd'], mask=a['segmentation'])
            for a in dataset['annotations']
            if a['image_id'] == sample['img_id']
            for x, y, w, h in [a['bbox']]
        ]
    metrics = ['bbox', 'segm']
    results = evaluate(CocoOcclusionRatioMetric(metric=metrics), samples)
    reference = evaluate(CocoMetric(metric=metrics), samples)
    assert {k: v for k, v in results.items() if '/occ/' not in k
            } == reference
    from_file = evaluate(
        CocoOcclusionRatioMetric(ann_file=ann_file, metric=metrics), samples)
    assert {k: v for k, v in results.items() if '/occ/' in k} == pytest.approx(
        {k: v for k, v in from_file.items() if '/occ/' in k}, nan_ok=True)


def test_registry_outfile_and_plot(dataset, ann_file, tmp_path):
    samples = make_predictions(dataset)
    prefix = str(tmp_path / 'ours')
    metric = MMDET_METRICS.build(
        dict(type='CocoOcclusionRatioMetric', ann_file=ann_file,
             outfile_prefix=prefix, bin_edges=[0, 0.2, 0.5, 1]))
    assert isinstance(metric, CocoOcclusionRatioMetric)
    results = evaluate(metric, samples)
    written = json.loads((tmp_path / 'ours.occlusion.json').read_text())
    assert written == pytest.approx(
        {k[len('coco/'):]: v for k, v in results.items()}, nan_ok=True)

    baseline = evaluate(
        CocoOcclusionRatioMetric(
            ann_file=ann_file, bin_edges=[0, 0.2, 0.5, 1]),
        make_predictions(dataset, seed=2))
    baseline_file = tmp_path / 'baseline.json'
    baseline_file.write_text(json.dumps(baseline))
    out = tmp_path / 'fig7'
    load_tool('plot_occlusion').main([
        f'{prefix}.occlusion.json', str(baseline_file), '--labels', 'ours',
        'baseline', '--out', str(out)])
    png = tmp_path / 'fig7.png'
    assert png.read_bytes()[:4] == b'\x89PNG' and png.stat().st_size > 10000


def test_deprecated_name(dataset, ann_file):
    """The previous registered name builds the metric, with a FutureWarning
    naming the new one, and gives its results."""
    samples = make_predictions(dataset)
    cfg = dict(ann_file=ann_file, bin_edges=[0, 0.2, 0.5, 1])
    with pytest.warns(FutureWarning,
                      match='`OcclusionRatioMetric` is deprecated; use '
                      '`CocoOcclusionRatioMetric`'):
        metric = MMDET_METRICS.build(dict(type='OcclusionRatioMetric', **cfg))
    assert isinstance(metric, CocoOcclusionRatioMetric)
    assert evaluate(metric, samples) == pytest.approx(
        evaluate(CocoOcclusionRatioMetric(**cfg), samples), nan_ok=True)


def test_no_predictions(dataset, ann_file, tmp_path):
    log_file = new_logger(tmp_path)
    samples = make_predictions(dataset)
    for sample in samples:
        pred = sample['pred_instances']
        sample['pred_instances'] = dict(
            bboxes=pred['bboxes'][:0], scores=pred['scores'][:0],
            labels=pred['labels'][:0], masks=[])
    results = evaluate(CocoOcclusionRatioMetric(ann_file=ann_file), samples)
    assert not any('mAP' in key for key in results)
    # the bins still count their images and instances: those of the ground
    # truth's occlusion, 16 rated images in all
    bins = occlusion_bins(compute_occlusion(dataset))
    assert [(results[f'coco/occ/num_images_{b.label}'],
             results[f'coco/occ/num_instances_{b.label}']) for b in bins
            ] == [(len(b.img_ids), len(b.ann_ids)) for b in bins]
    assert sum(len(b.img_ids) for b in bins) == 16
    assert 'No bbox predictions' in log_file.read_text()


@pytest.mark.parametrize('kwargs, match', [
    (dict(bin_edges=[0.3, 0.2]), 'bin_edges'),
    (dict(occlusion_level='pixel'), "occlusion_level='pixel'"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CocoOcclusionRatioMetric(**kwargs)


def test_benchmark_tool(tmp_path):
    tool = load_tool('benchmark_occlusion')
    rng = np.random.default_rng(0)  # the tool's default --seed
    dataset = tool.make_dataset(
        rng, num_images=12, num_instances=60,
        height=40, width=50, num_classes=3)
    assert len(dataset['images']) == 12 and len(dataset['annotations']) == 60
    points = np.concatenate([
        np.reshape(a['segmentation'][0], (-1, 2))
        for a in dataset['annotations']
    ])
    assert points.min() >= 0 and (points.max(0) <= (50, 40)).all()

    out = tmp_path / 'benchmark.json'
    tool.main([
        '--num-images', '12', '--num-instances', '60', '--height', '40',
        '--width', '50', '--num-classes', '3', '--out', str(out)
    ])
    report = json.loads(out.read_text())
    # the predictions the tool draws next from the same generator
    samples = tool.make_predictions(rng, dataset, 3)
    assert report['num_images'] == 12 and report['num_predictions'] == sum(
        len(s['pred_instances']['scores']) for s in samples)
    assert report['occlusion_over_coco'] == pytest.approx(
        report['occlusion_metric_s'] / report['coco_metric_s'])


def with_many_detections(samples, per_image=360, seed=3):
    """``samples`` plus tiny random boxes (false positives) up to
    ``per_image`` detections in each image, at least 110 of each class
    (COCOeval keeps the best ``maxDets`` of an image and a class), all
    scored above the predictions of ``samples``, which fall beyond the 100
    best of their image and class."""
    rng = np.random.default_rng(seed)
    samples = copy.deepcopy(samples)
    for sample in samples:
        pred = sample['pred_instances']
        extra = per_image - len(pred['scores'])
        # 1 - 2 pixels: IoU < 0.5 with every ground-truth instance
        xy = rng.uniform(0, (WIDTH - 2, HEIGHT - 2), (extra, 2))
        wh = rng.uniform(1, 2, (extra, 2))
        boxes = torch.tensor(np.concatenate([xy, xy + wh], 1),
                             dtype=torch.float32)
        pred['bboxes'] = torch.cat([pred['bboxes'], boxes])
        pred['scores'] = torch.cat([
            pred['scores'] * 0.04,
            torch.tensor(rng.uniform(0.05, 1, extra), dtype=torch.float32)
        ])
        pred['labels'] = torch.cat(
            [pred['labels'],
             torch.arange(extra) % len(CLASSES)])
    return samples


def test_bin_of_all_images_equals_coco_metric_beyond_100_detections(
        dataset, tmp_path):
    """With 360 detections per image, CocoMetric's AP50 and AP75 count
    1000 detections per image and its AP 100 (COCOeval.summarize); a bin
    holding every image gives the same three numbers. The good detections
    are the lowest scored, so the limit matters."""
    rated = copy.deepcopy(dataset)
    rated['images'] = [img for img in rated['images'] if img['id'] <= 16]
    rated['annotations'] = [
        ann for ann in rated['annotations'] if ann['image_id'] <= 16
    ]
    ann_file = tmp_path / 'rated.json'
    ann_file.write_text(json.dumps(rated))
    samples = with_many_detections(make_predictions(rated, with_masks=False))
    assert all(len(s['pred_instances']['scores']) == 360 for s in samples)
    reference = evaluate(CocoMetric(ann_file=str(ann_file)), samples)
    results = evaluate(
        CocoOcclusionRatioMetric(ann_file=str(ann_file), bin_edges=[0, 1]),
        samples)
    assert results['coco/occ/num_images_0-1'] == 16
    for key in COCO_KEYS:
        assert results[f'coco/occ/bbox_{key}_0-1'] == reference[
            f'coco/bbox_{key}'] == results[f'coco/bbox_{key}']
    # at 100 detections per image (COCOeval's default) no true positive
    # is left
    at_100 = cocoeval_stats(str(ann_file), coco_results(samples, 'bbox'),
                            'bbox')
    assert at_100[1] == 0 < reference['coco/bbox_mAP_50']


@pytest.mark.parametrize('level, edges', [('image', [0, 0.2]),
                                          ('instance', [0.1, 0.6])])
def test_outside_bin_edges_are_counted_and_warned(dataset, ann_file,
                                                   tmp_path, level, edges):
    ratios = compute_occlusion(dataset)
    values = (ratios.image_ratios if level == 'image' else
              ratios.instance_fractions).values()
    rated = [v for v in values if not math.isnan(v)]
    outside = sum(not edges[0] <= v <= edges[1] for v in rated)
    assert 0 < outside < len(rated)
    log_file = new_logger(tmp_path)
    results = evaluate(
        CocoOcclusionRatioMetric(ann_file=ann_file, metric='bbox',
                             bin_edges=edges, occlusion_level=level),
        make_predictions(dataset))
    what = ('images have an occlusion ratio' if level == 'image' else
            'instances have an occluded fraction')
    assert (f'{outside} of {len(rated)} {what} outside the bin edges '
            f'[{edges[0]:g}, {edges[1]:g}]') in log_file.read_text()
    label = f'{edges[0]:g}-{edges[1]:g}'
    counted = results[f'coco/occ/num_images_{label}' if level == 'image'
                      else f'coco/occ/num_instances_{label}']
    assert counted == len(rated) - outside


@pytest.mark.parametrize('instance_shape, box_message', [
    ('box', 'each instance taken as its box'),
    ('auto', 'each instance taken as its mask (instance_shape'),
])
def test_shape_message_says_what_the_options_mean(dataset, ann_file,
                                                  tmp_path, instance_shape,
                                                  box_message):
    log_file = new_logger(tmp_path)
    evaluate(
        CocoOcclusionRatioMetric(ann_file=ann_file, metric='bbox',
                             instance_shape=instance_shape),
        make_predictions(dataset))
    log = log_file.read_text()
    assert box_message in log
    assert 'rasterized' not in log and 'without segmentation' not in log


def test_non_finite_scores_are_counted_and_warned(dataset, ann_file,
                                                  tmp_path):
    samples = make_predictions(dataset)
    scores = [s['pred_instances']['scores'] for s in samples]
    with_two = [i for i, s in enumerate(scores) if len(s) >= 2][:2]
    scores[with_two[0]][:2] = float('nan')
    scores[with_two[1]][0] = float('inf')
    log_file = new_logger(tmp_path)
    results = evaluate(
        CocoOcclusionRatioMetric(ann_file=ann_file, metric='bbox'), samples)
    total = sum(len(s) for s in scores)
    assert (f'3 of {total} prediction scores, in 2 of {len(samples)} images, '
            'are not finite') in log_file.read_text()
    reference = evaluate(CocoMetric(ann_file=ann_file, metric='bbox'),
                         samples)
    assert {k: v for k, v in results.items() if '/occ/' not in k
            } == reference
