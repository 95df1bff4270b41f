"""Figure 7c of Tied Block Convolution: false positives under occlusion.

Given a COCO annotation file and the detections of one or more detectors on
it (the pickle of mmdet's ``tools/test.py --out``), counts each detector's
false positives (a detection scored at least ``--score-thr`` matching no
unmatched ground truth of its class at ``--iou``, greedily by score; see
sharedbasis_mm/evaluation/false_positives.py) and writes:

- ``OUT_DIR/false_positives.json``: per model, the false positives per image
  of each occlusion bin (the images binned by their occlusion ratio as the
  occlusion metric bins them);
- ``OUT_DIR/false_positives.png``: false positives per image against the
  occlusion ratio, one line per model;
- ``OUT_DIR/most_occluded/<rank>_<image id>.png``: the ``--num-images`` most
  occluded images, the models' detections side by side, false positives in
  red, true positives in green, the ground truth dashed white (on a grey
  canvas when the image file is not found under ``--img-dir``).

Example:
    python tools/analysis_tools/visualize_occlusion.py \
        data/coco/annotations/instances_val2017.json tied.pkl resnet.pkl \
        --labels TiedResNet50 ResNet50 --img-dir data/coco/val2017 \
        --instance-shape box --out-dir work_dirs/fig7c
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/
import tool_utils  # noqa: E402,F401,I001 (first: see tools/tool_utils)
import argparse
import json
import math
import os
import pickle
from typing import Dict, List, Optional

import numpy as np
from mmengine.fileio import load

from sharedbasis_mm.evaluation import (DEFAULT_BIN_EDGES,
                                       check_bin_edges, compute_occlusion,
                                       load_coco_annotations, occlusion_bins)
from sharedbasis_mm.evaluation.false_positives import (
    Detections, false_positives_per_bin, image_false_positives,
    results_to_detections)
from sharedbasis_mm.utils.validation import (check_file,
                                             check_number)

from tool_utils import DefaultsHelpFormatter

JSON_NAME = 'false_positives.json'
PLOT_NAME = 'false_positives.png'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter,
        description='False positives per image against the occlusion ratio, '
        'and the most occluded images with each model\'s detections '
        '(Figure 7c of Tied Block Convolution).')
    parser.add_argument('ann_file', help='COCO annotation file (json)')
    parser.add_argument(
        'results', nargs='+', metavar='RESULT',
        help='detections of a model: the pickle of mmdet tools/test.py --out')
    parser.add_argument('--labels', nargs='+', required=True,
                        metavar='NAME', help='a name per RESULT')
    parser.add_argument('--out-dir', required=True,
                        help='where the JSON and PNG files go')
    parser.add_argument('--num-images', type=int, default=8,
                        help='most occluded images to draw (0 for none)')
    parser.add_argument('--iou', type=float, default=0.5,
                        help='IoU of a match')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detections scored lower are left out')
    parser.add_argument(
        '--bin-edges', type=float, nargs='+',
        default=list(DEFAULT_BIN_EDGES),
        help='increasing occlusion bin edges in [0, 1], as the metric\'s')
    parser.add_argument(
        '--instance-shape', choices=['auto', 'box'], default='auto',
        help='an instance is its mask when it has one, else its box (auto), '
        'or always its box (box: use it for COCO, whose masks are visible '
        'parts)')
    parser.add_argument('--img-dir', default='',
                        help='folder the file_name of the images is under')
    args = parser.parse_args(argv)
    if len(args.labels) != len(args.results):
        parser.error(f'--labels: expected one name per RESULT '
                     f'({len(args.results)}), got {len(args.labels)}')
    if len(set(args.labels)) != len(args.labels):
        parser.error(f'--labels: expected distinct names, got {args.labels}')
    try:
        check_number('--iou', args.iou, min_value=0, max_value=1,
                     min_inclusive=False)
        check_number('--score-thr', args.score_thr)
        check_bin_edges(args.bin_edges)
        if args.num_images < 0:
            raise ValueError('--num-images must be an integer >= 0, got '
                             f'--num-images={args.num_images}')
    except ValueError as error:
        parser.error(str(error))
    return args


def load_detections(path: str, category_ids: List[int]
                    ) -> Dict[int, Detections]:
    """The detections of a ``tools/test.py --out`` pickle, by image."""
    try:
        results = load(check_file(path, 'detection results file'),
                       file_format='pkl')
        if not isinstance(results, list):
            raise ValueError(f'it holds a {type(results).__name__}; '
                             'expected a list')
        return results_to_detections(results, category_ids)
    except (OSError, ValueError, EOFError, pickle.UnpicklingError) as error:
        raise SystemExit(f'RESULT {path}: {error}')


def draw_image(dataset: dict, img_id: int, models: Dict[str, Detections],
               false_positives: Dict[str, np.ndarray], score_thr: float,
               ratio: float, img_dir: str, path: str) -> None:
    """One image, a panel per model with its counted detections."""
    import matplotlib.patches as patches
    import mmcv
    from matplotlib.figure import Figure
    image_info = next(i for i in dataset['images'] if i['id'] == img_id)
    image_path = osp.join(img_dir, image_info.get('file_name', ''))
    if osp.isfile(image_path):
        image = mmcv.imread(image_path, channel_order='rgb')
    else:
        image = np.full((image_info['height'], image_info['width'], 3), 128,
                        dtype=np.uint8)
    gts = [
        a['bbox'] for a in dataset.get('annotations', [])
        if a['image_id'] == img_id and not a.get('iscrowd', 0)
    ]
    figure = Figure(figsize=(4 * len(models), 4), layout='constrained')
    for index, (label, detections) in enumerate(models.items()):
        axes = figure.add_subplot(1, len(models), index + 1)
        axes.imshow(image)
        axes.set_axis_off()
        for x, y, w, h in gts:
            axes.add_patch(patches.Rectangle(
                (x, y), w, h, fill=False, edgecolor='white', linestyle='--'))
        is_false = false_positives[label][img_id]
        for box, score, false in zip(detections.boxes, detections.scores,
                                     is_false):
            if score < score_thr:
                continue
            axes.add_patch(patches.Rectangle(
                box[:2], box[2], box[3], fill=False, linewidth=1.5,
                edgecolor='red' if false else 'lime'))
        axes.set_title(f'{label}: {int(is_false.sum())} false positives\n'
                       f'image {img_id}, occlusion ratio {ratio:.2f}',
                       fontsize=9)
    figure.savefig(path, dpi=100)


def plot_per_bin(summary: Dict[str, List[dict]], path: str) -> None:
    """False positives per image against the bins, one line per model."""
    from matplotlib.figure import Figure
    figure = Figure(figsize=(6, 4), layout='constrained')
    axes = figure.add_subplot()
    for label, rows in summary.items():
        axes.plot([row['bin'] for row in rows],
                  [math.nan if row['per_image'] is None else row['per_image']
                   for row in rows],
                  marker='o', label=label)
    axes.set_xlabel('occlusion ratio')
    axes.set_ylabel('false positives per image')
    axes.tick_params(axis='x', labelrotation=45)
    axes.legend()
    figure.savefig(path, dpi=120)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    try:
        dataset = load_coco_annotations(args.ann_file,
                                        ('images', 'categories'))
        ratios = compute_occlusion(dataset, args.instance_shape)
    except (OSError, ValueError) as error:
        raise SystemExit(f'ANN_FILE {args.ann_file}: {error}')
    bins = occlusion_bins(ratios, args.bin_edges)
    category_ids = [category['id'] for category in dataset['categories']]
    models = {
        label: load_detections(path, category_ids)
        for label, path in zip(args.labels, args.results)
    }
    false_positives = {}
    for label, detections in models.items():
        try:
            false_positives[label] = image_false_positives(
                dataset, detections, args.iou, args.score_thr)
        except ValueError as error:
            raise SystemExit(f'{label}: {error}')
    summary = {
        label: false_positives_per_bin(masks, bins)
        for label, masks in false_positives.items()
    }
    os.makedirs(args.out_dir, exist_ok=True)
    output = dict(
        ann_file=args.ann_file, iou=args.iou, score_thr=args.score_thr,
        instance_shape=args.instance_shape, models=summary)
    with open(osp.join(args.out_dir, JSON_NAME), 'w') as f:
        json.dump(output, f, indent=2)
    plot_per_bin(summary, osp.join(args.out_dir, PLOT_NAME))
    for label, rows in summary.items():
        print(f'{label}: false positives per image by occlusion bin: ' +
              ', '.join(f'{row["bin"]}: {row["per_image"]:.2f}'
                        for row in rows if row['num_images']))
    rated = [(ratio, img_id) for img_id, ratio in ratios.image_ratios.items()
             if not math.isnan(ratio)]
    most_occluded = sorted(rated, key=lambda pair: (-pair[0], pair[1]))
    draw_dir = osp.join(args.out_dir, 'most_occluded')
    if args.num_images:
        os.makedirs(draw_dir, exist_ok=True)
    for rank, (ratio, img_id) in enumerate(most_occluded[:args.num_images]):
        draw_image(
            dataset, img_id,
            {label: detections.get(img_id, Detections.empty())
             for label, detections in models.items()},
            false_positives, args.score_thr, ratio, args.img_dir,
            osp.join(draw_dir, f'{rank:02d}_{img_id}.png'))
    print(f'written to {args.out_dir}: {JSON_NAME}, {PLOT_NAME}'
          f'{", most_occluded/" if args.num_images else ""}')
    return output


if __name__ == '__main__':
    main()
