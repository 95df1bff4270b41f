"""Time the occlusion ratios and CocoOcclusionRatioMetric against CocoMetric.

Builds a COCO-val-sized set of random polygon instances (5,000 images of
640x480, 36,000 instances, 1% crowd, 80 categories; for timing only, not a
data set to learn from) and detections around them (most instances found
with a jittered polygon, plus a few false positives per image), then reports:

* the time to compute every image's occlusion ratio (``compute_occlusion``),
* the time of mmdet's ``CocoMetric.evaluate`` and of
  ``CocoOcclusionRatioMetric.evaluate`` (first evaluation, ratios included) on
  the same predictions, and their ratio.

Each time is reported as wall-clock and as CPU seconds of this process; on a
machine shared with other jobs the CPU seconds compare more fairly.

Example:
    python tools/benchmark_occlusion.py \
        --out work_dirs/benchmark_occlusion.json
"""
import tool_utils  # noqa: F401,I001 (first: see tools/tool_utils)
import argparse
import os
import os.path as osp
import tempfile
import time
from typing import List, Optional, Tuple

import numpy as np
import pycocotools.mask as mask_util
import torch
from mmdet.evaluation import CocoMetric
from mmengine.fileio import dump

from sharedbasis_mm.evaluation import (CocoOcclusionRatioMetric,
                                       compute_occlusion)

from tool_utils import DefaultsHelpFormatter, int_at_least


def random_polygon(rng: np.random.Generator, height: int, width: int,
                   centre: np.ndarray, radius: float) -> List[float]:
    """A star-shaped polygon of 8 to 20 points around ``centre``."""
    num_points = rng.integers(8, 21)
    angles = np.sort(rng.uniform(0, 2 * np.pi, num_points))
    radii = radius * rng.uniform(0.6, 1.0, num_points)
    aspect = rng.uniform(0.5, 2.0)
    xs = np.clip(centre[0] + radii * np.cos(angles) * aspect, 0, width)
    ys = np.clip(centre[1] + radii * np.sin(angles) / aspect, 0, height)
    return np.stack([xs, ys], 1).ravel().round(2).tolist()


def polygon_box(polygon: List[float]) -> List[float]:
    """``[x, y, w, h]`` of a flat polygon."""
    xs, ys = polygon[0::2], polygon[1::2]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]


def make_dataset(rng: np.random.Generator, num_images: int,
                 num_instances: int, height: int, width: int,
                 num_classes: int) -> dict:
    """Random COCO ground truth with polygon masks."""
    images = [
        dict(id=i + 1, file_name=f'{i + 1}.jpg', height=height, width=width)
        for i in range(num_images)
    ]
    annotations = []
    for ann_id in range(1, num_instances + 1):
        radius = float(np.exp(rng.uniform(np.log(4), np.log(160))))
        centre = rng.uniform((0, 0), (width, height))
        polygon = random_polygon(rng, height, width, centre, radius)
        box = polygon_box(polygon)
        annotations.append(
            dict(
                id=ann_id,
                image_id=int(rng.integers(1, num_images + 1)),
                category_id=int(rng.integers(1, num_classes + 1)),
                segmentation=[polygon],
                bbox=box,
                area=box[2] * box[3],
                iscrowd=int(rng.random() < 0.01)))
    categories = [
        dict(id=c, name=f'class_{c}') for c in range(1, num_classes + 1)
    ]
    return dict(images=images, annotations=annotations, categories=categories)


def make_predictions(rng: np.random.Generator, dataset: dict,
                     num_classes: int) -> List[dict]:
    """mmdet data samples with detections around the ground truth."""
    image_anns = {img['id']: [] for img in dataset['images']}
    for ann in dataset['annotations']:
        image_anns[ann['image_id']].append(ann)
    samples = []
    for img in dataset['images']:
        height, width = img['height'], img['width']
        polygons, labels, scores = [], [], []
        for ann in image_anns[img['id']]:
            if ann['iscrowd'] or rng.random() > 0.85:
                continue
            x, y, w, h = ann['bbox']
            shift = rng.normal(0, 0.1, 2) * (w, h)
            points = np.asarray(ann['segmentation'][0]).reshape(-1, 2)
            polygons.append(
                np.clip(points + shift, 0,
                        (width, height)).ravel().tolist())
            same_class = rng.random() < 0.9
            labels.append(ann['category_id'] - 1 if same_class else int(
                rng.integers(num_classes)))
            scores.append(rng.uniform(0.3, 1.0))
        for _ in range(rng.poisson(3)):
            radius = float(np.exp(rng.uniform(np.log(4), np.log(160))))
            centre = rng.uniform((0, 0), (width, height))
            polygons.append(
                random_polygon(rng, height, width, centre, radius))
            labels.append(int(rng.integers(num_classes)))
            scores.append(rng.uniform(0.0, 0.6))
        boxes = [polygon_box(p) for p in polygons]
        samples.append(
            dict(
                img_id=img['id'],
                ori_shape=(height, width),
                pred_instances=dict(
                    bboxes=torch.tensor(
                        [[x, y, x + w, y + h] for x, y, w, h in boxes],
                        dtype=torch.float32).reshape(-1, 4),
                    scores=torch.tensor(scores, dtype=torch.float32),
                    labels=torch.tensor(labels, dtype=torch.long),
                    masks=[
                        mask_util.frPyObjects([p], height, width)[0]
                        for p in polygons
                    ])))
    return samples


def timed(function, *args) -> Tuple[float, float]:
    """Wall-clock and CPU seconds of ``function(*args)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    function(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def time_metric(metric: CocoMetric, samples: List[dict],
                classes: Tuple[str, ...]) -> Tuple[float, float]:
    """Wall-clock and CPU seconds of ``metric.evaluate`` over ``samples``."""
    metric.dataset_meta = dict(classes=classes)
    metric.process({}, samples)
    return timed(metric.evaluate, len(samples))


def parse_args(args: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter,
        description='Time occlusion ratios and CocoOcclusionRatioMetric.')
    parser.add_argument(
        '--num-images', type=int_at_least(1), default=5000, help='generated images')
    parser.add_argument(
        '--num-instances',
        type=int_at_least(1),
        default=36000,
        help='generated instances, over all images')
    parser.add_argument(
        '--height', type=int_at_least(1), default=480, help='image height')
    parser.add_argument(
        '--width', type=int_at_least(1), default=640, help='image width')
    parser.add_argument(
        '--num-classes', type=int_at_least(1), default=80, help='categories')
    parser.add_argument(
        '--metric', nargs='+', default=['bbox', 'segm'],
        help='CocoMetric metrics (default: bbox segm)')
    parser.add_argument(
        '--occlusion-level',
        choices=['image', 'instance'],
        default='image',
        help='occlusion_level of CocoOcclusionRatioMetric')
    parser.add_argument(
        '--ratios-only', action='store_true',
        help='time the occlusion ratios only, not the metrics')
    parser.add_argument(
        '--seed',
        type=int_at_least(0),
        default=0,
        help='seed of the generated set')
    parser.add_argument(
        '--out',
        default='work_dirs/benchmark_occlusion.json',
        help='json file for the timings')
    return parser.parse_args(args)


def main(args: Optional[List[str]] = None) -> None:
    args = parse_args(args)
    rng = np.random.default_rng(args.seed)
    print(f'generating {args.num_images} images with {args.num_instances} '
          'polygon instances')
    dataset = make_dataset(rng, args.num_images, args.num_instances,
                           args.height, args.width, args.num_classes)
    report = dict(
        num_images=args.num_images,
        num_instances=args.num_instances,
        image_size=[args.height, args.width])

    report['ratios_s'], report['ratios_cpu_s'] = timed(
        compute_occlusion, dataset)
    print(f"occlusion ratios: {report['ratios_s']:.1f} s "
          f"({report['ratios_cpu_s']:.1f} s CPU)")

    if not args.ratios_only:
        samples = make_predictions(rng, dataset, args.num_classes)
        classes = tuple(c['name'] for c in dataset['categories'])
        report['num_predictions'] = sum(
            len(s['pred_instances']['scores']) for s in samples)
        with tempfile.TemporaryDirectory() as tmp_dir:
            ann_file = osp.join(tmp_dir, 'instances.json')
            dump(dataset, ann_file)
            report['coco_metric_s'], report['coco_metric_cpu_s'] = (
                time_metric(
                    CocoMetric(ann_file=ann_file, metric=args.metric),
                    samples, classes))
            print(f"CocoMetric ({' '.join(args.metric)}): "
                  f"{report['coco_metric_s']:.1f} s "
                  f"({report['coco_metric_cpu_s']:.1f} s CPU)")
            report['occlusion_metric_s'], report['occlusion_metric_cpu_s'] = (
                time_metric(
                    CocoOcclusionRatioMetric(
                        ann_file=ann_file,
                        metric=args.metric,
                        occlusion_level=args.occlusion_level), samples,
                    classes))
        report['occlusion_over_coco'] = (
            report['occlusion_metric_s'] / report['coco_metric_s'])
        report['occlusion_over_coco_cpu'] = (
            report['occlusion_metric_cpu_s'] / report['coco_metric_cpu_s'])
        print(f'CocoOcclusionRatioMetric ({args.occlusion_level} level, '
              f"ratios included): {report['occlusion_metric_s']:.1f} s "
              f"({report['occlusion_metric_cpu_s']:.1f} s CPU), "
              f"{report['occlusion_over_coco']:.2f}x CocoMetric "
              f"({report['occlusion_over_coco_cpu']:.2f}x in CPU time)")

    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    dump(report, args.out)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
