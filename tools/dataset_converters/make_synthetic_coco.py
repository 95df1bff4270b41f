"""Generate the synthetic COCO-format occlusion data set.

Usage:
    python tools/dataset_converters/make_synthetic_coco.py OUT_DIR \\
        [--train 400] [--val 100] [--seed 0] [--image-size 128 128] \\
        [--occlusion 0.0 0.6] [--workers N]

Writes ``OUT_DIR/{train,val}/*.png`` and
``OUT_DIR/annotations/instances_{train,val}.json`` (classes: circle,
triangle, rectangle, star), deterministic from the seed, and prints a
summary of each split's occlusion ratios.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/
import tool_utils  # noqa: E402,F401,I001 (first: see tools/tool_utils)
import argparse
import json
import os

import numpy as np
from mmengine.logging import print_log

from dataset_converters.synthetic_coco import make_synthetic_coco
from tool_utils import DefaultsHelpFormatter, int_at_least


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter,
        description=__doc__.split('\n')[0])
    parser.add_argument('out_dir', help='folder of the data set')
    parser.add_argument('--train', type=int_at_least(0), default=400,
                        help='training images')
    parser.add_argument('--val', type=int_at_least(0), default=100,
                        help='validation images')
    parser.add_argument(
        '--seed',
        type=int_at_least(0),
        default=0,
        help='seed of the generator')
    parser.add_argument('--image-size', type=int_at_least(1), nargs=2,
                        default=(128, 128), metavar=('HEIGHT', 'WIDTH'),
                        help='image size')
    parser.add_argument('--occlusion', type=float, nargs=2,
                        default=(0.0, 0.6), metavar=('LOW', 'HIGH'),
                        help='range of the images\' occlusion ratios')
    parser.add_argument('--objects', type=int, nargs=2, default=(1, 6),
                        metavar=('MIN', 'MAX'),
                        help='shapes drawn per image')
    parser.add_argument('--workers', type=int_at_least(0),
                        default=os.cpu_count() or 1,
                        help='processes drawing the images (default: one '
                        'per CPU); the images do not depend on it')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    low, high = args.occlusion
    if not 0 <= low <= high <= 1:
        raise SystemExit(f'--occlusion must satisfy 0 <= LOW <= HIGH <= 1, '
                         f'got {low} {high}')
    os.makedirs(osp.join(args.out_dir, 'annotations'), exist_ok=True)
    for split, count in (('train', args.train), ('val', args.val)):
        if count == 0:
            continue
        try:
            coco = make_synthetic_coco(
                args.out_dir,
                split,
                count,
                seed=args.seed,
                num_workers=args.workers,
                image_size=tuple(args.image_size),
                occlusion_range=(low, high),
                num_objects=tuple(args.objects))
        except ValueError as error:  # --objects
            raise SystemExit(f'make_synthetic_coco: {error}')
        path = osp.join(args.out_dir, 'annotations',
                        f'instances_{split}.json')
        with open(path, 'w') as f:
            json.dump(coco, f)
        ratios = [img['occlusion_ratio'] for img in coco['images']]
        print_log(
            f'{split}: {len(coco["images"])} images, '
            f'{len(coco["annotations"])} instances, occlusion ratio '
            f'min {min(ratios):.2f} / median {np.median(ratios):.2f} / '
            f'max {max(ratios):.2f} -> {path}',
            logger='current')


if __name__ == '__main__':
    main()
