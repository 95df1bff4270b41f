"""Split a COCO annotation file into occlusion-ratio subsets.

Writes one COCO annotation file per non-empty occlusion bin,
``OUT_DIR/{stem}_occ_{bin}.json`` (for example
``instances_val2017_occ_0.2-0.3.json``), which any COCO evaluator can run
on, and ``OUT_DIR/summary.csv`` with the images and instances of every bin.
See sharedbasis_mm/evaluation/occlusion.py for how the ratios are counted.

Example:
    python tools/analysis_tools/occlusion_subsets.py \
        data/coco/annotations/instances_val2017.json \
        work_dirs/occlusion_subsets
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/
import tool_utils  # noqa: E402,F401,I001 (first: see tools/tool_utils)
import argparse
import csv
import math
import os
from typing import List, Optional

from mmengine.fileio import dump

from sharedbasis_mm.evaluation import (DEFAULT_BIN_EDGES, check_bin_edges,
                                       compute_occlusion, count_outside_bins,
                                       load_coco_annotations, occlusion_bins,
                                       subset_dataset)

from tool_utils import DefaultsHelpFormatter


def parse_args(args: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter,
        description='Write one COCO annotation file per occlusion bin.')
    parser.add_argument('ann_file', help='COCO annotation file (json)')
    parser.add_argument('out_dir', help='folder for the subset files')
    parser.add_argument(
        '--bin-edges',
        type=float,
        nargs='+',
        default=list(DEFAULT_BIN_EDGES),
        help='increasing bin edges in [0, 1]; the last bin is closed '
        '(default: 0 0.1 ... 1)')
    parser.add_argument(
        '--level',
        choices=['image', 'instance'],
        default='image',
        help='bin images by their occlusion ratio, or instances by their '
        'occluded fraction (the other instances of their images become '
        'crowd regions, i.e. ignored) (default: image)')
    parser.add_argument(
        '--instance-shape',
        choices=['auto', 'box'],
        default='auto',
        help='an instance is its mask when it has one, else its box '
        '(auto), or always its box (box: use it for COCO, whose masks are '
        'visible parts) (default: auto)')
    args = parser.parse_args(args)
    try:
        check_bin_edges(args.bin_edges)
    except (TypeError, ValueError) as error:
        parser.error(f'--bin-edges: {error}')
    return args


def main(args: Optional[List[str]] = None) -> None:
    args = parse_args(args)
    print(f'loading {args.ann_file}')
    dataset = load_coco_annotations(args.ann_file)
    print(f"computing the occlusion of {len(dataset['images'])} images")
    ratios = compute_occlusion(dataset, args.instance_shape)
    bins = occlusion_bins(ratios, args.bin_edges, args.level)
    unrated = sum(math.isnan(r) for r in ratios.image_ratios.values())
    if unrated:
        print(f'{unrated} images have no occlusion ratio (no non-crowd '
              'instance with pixels) and are in no bin')
    outside, rated = count_outside_bins(ratios, bins, args.level)
    if outside:
        what = ('images have an occlusion ratio' if args.level == 'image'
                else 'instances have an occluded fraction')
        print(f'{outside} of {rated} {what} outside the bin edges '
              f'[{args.bin_edges[0]:g}, {args.bin_edges[-1]:g}] and are in '
              'no bin')
    if args.instance_shape == 'auto' and ratios.num_box_instances:
        print(f'{ratios.num_box_instances} instances have no segmentation: '
              'their box is taken as their shape')

    os.makedirs(args.out_dir, exist_ok=True)
    stem = osp.splitext(osp.basename(args.ann_file))[0]
    rows = []
    for occ_bin in bins:
        file_name = ''
        if occ_bin.img_ids:
            file_name = f'{stem}_occ_{occ_bin.label}.json'
            dump(subset_dataset(dataset, occ_bin),
                 osp.join(args.out_dir, file_name))
        else:
            print(f'bin {occ_bin.label} has no images: no file written')
        rows.append([
            occ_bin.label, occ_bin.low, occ_bin.high,
            len(occ_bin.img_ids),
            len(occ_bin.ann_ids), file_name
        ])

    header = ['bin', 'low', 'high', 'images', 'instances', 'file']
    summary = osp.join(args.out_dir, 'summary.csv')
    with open(summary, 'w', newline='') as f:
        csv.writer(f).writerows([header] + rows)
    print(f'{args.level}-level occlusion bins:')
    print(f"{'bin':>10} {'images':>8} {'instances':>10}  file")
    for label, _, _, images, instances, file_name in rows:
        print(f'{label:>10} {images:>8} {instances:>10}  {file_name or "-"}')
    print(f'wrote {sum(bool(r[-1]) for r in rows)} subset files and '
          f'{summary}')


if __name__ == '__main__':
    main()
