"""Plot AP and AP75 against occlusion ratio, one line per model (TBC Fig. 7).

Each RESULT is a json file holding the metrics of
``CocoOcclusionRatioMetric``, keys
``[prefix/]occ/{bbox,segm}_mAP{,_75}_{low}-{high}``:

* the file the metric writes when given ``outfile_prefix``
  (``{outfile_prefix}.occlusion.json``),
* the json log of mmdet's ``tools/test.py`` (``work_dir/<time>/<time>.json``),
* or a json-lines file such as ``vis_data/scalars.json`` of a training run,
  whose last line with occlusion metrics is used.

Points of a bin without images (NaN) are left out. The figure is written to
``OUT.png`` and ``OUT.svg``.

Example:
    python tools/analysis_tools/plot_occlusion.py \\
        tied.occlusion.json resnet.occlusion.json \\
        --labels TiedResNet50 ResNet50 --out work_dirs/fig7
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/
import tool_utils  # noqa: E402,F401,I001 (first: see tools/tool_utils)
import argparse
import json
import math
import os
import re
from typing import Dict, List, Optional, Tuple

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from sharedbasis_mm.utils.validation import check_file  # noqa: E402

from tool_utils import DefaultsHelpFormatter  # noqa: E402

OCC_KEY = re.compile(r'(?:^|/)occ/(?P<iou_type>bbox|segm)_(?P<item>mAP|mAP_75)'
                     r'_(?P<low>[0-9.]+)-(?P<high>[0-9.]+)$')
PANELS = (('mAP', 'AP (%)'), ('mAP_75', 'AP$^{75}$ (%)'))


def load_metrics(path: str) -> dict:
    """The last metrics dict of a json or json-lines file that holds
    occlusion metrics."""
    with open(check_file(path, 'occlusion results file')) as f:
        text = f.read()
    try:
        records = [json.loads(text)]
    except json.JSONDecodeError:
        try:
            records = [
                json.loads(line) for line in text.splitlines()
                if line.strip()
            ]
        except json.JSONDecodeError as error:
            raise ValueError(
                f'{path} is neither a JSON file nor a JSON-lines file '
                f'({error}); expected the metrics of CocoOcclusionRatioMetric'
            ) from None
    for record in reversed(records):
        if isinstance(record, dict) and any(map(OCC_KEY.search, record)):
            return record
    raise ValueError(f'{path} holds no occlusion metrics (keys like '
                     "'occ/bbox_mAP_0.2-0.3'); was it written by "
                     'CocoOcclusionRatioMetric?')


def occlusion_curves(metrics: dict,
                     iou_type: str) -> Dict[str, List[Tuple[float, float]]]:
    """(bin centre, AP) points per metric item (``mAP``, ``mAP_75``),
    sorted by bin."""
    curves = {item: [] for item, _ in PANELS}
    for key, value in metrics.items():
        match = OCC_KEY.search(key)
        if match and match['iou_type'] == iou_type:
            centre = (float(match['low']) + float(match['high'])) / 2
            curves[match['item']].append((centre, float(value)))
    if not curves['mAP']:
        raise ValueError(f'no occlusion metrics for iou_type={iou_type!r}')
    return {item: sorted(points) for item, points in curves.items()}


def plot_occlusion(curves: Dict[str, Dict[str, List[Tuple[float, float]]]],
                   out: str, iou_type: str) -> List[str]:
    """Draw one panel per metric item, one line per model; return the
    written files."""
    fig, axes = plt.subplots(1, len(PANELS), figsize=(5 * len(PANELS), 4))
    for ax, (item, ylabel) in zip(axes, PANELS):
        for label, model_curves in curves.items():
            points = [(x, 100 * y) for x, y in model_curves[item]
                      if not math.isnan(y)]
            if points:
                ax.plot(*zip(*points), marker='o', label=label)
        ax.set_xlim(0, 1)
        ax.set_xlabel('occlusion ratio r (bin centres)')
        ax.set_ylabel(ylabel)
        ax.set_title(f'{iou_type} {ylabel.split(" ")[0]} vs. occlusion')
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    files = [f'{out}.png', f'{out}.svg']
    for file in files:
        fig.savefig(file, dpi=150)
    plt.close(fig)
    return files


def parse_args(args: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter,
        description='Plot AP and AP75 against occlusion ratio (Fig. 7).')
    parser.add_argument(
        'results', nargs='+', help='json results of CocoOcclusionRatioMetric')
    parser.add_argument(
        '--labels',
        nargs='+',
        help='one legend label per result (default: the file names)')
    parser.add_argument(
        '--iou-type',
        choices=['bbox', 'segm'],
        default='bbox',
        help='which AP to plot (default: bbox)')
    parser.add_argument(
        '--out',
        default='work_dirs/occlusion',
        help='output path without extension (default: work_dirs/occlusion)')
    args = parser.parse_args(args)
    if args.labels is None:
        args.labels = [osp.basename(path) for path in args.results]
    if len(args.labels) != len(args.results):
        parser.error(f'--labels needs one label per result: got '
                     f'{len(args.labels)} labels for {len(args.results)} '
                     'results')
    return args


def main(args: Optional[List[str]] = None) -> None:
    args = parse_args(args)
    curves = {}
    for label, path in zip(args.labels, args.results):
        curves[label] = occlusion_curves(load_metrics(path), args.iou_type)
        ap = ' '.join(f'{y:.3f}' for _, y in curves[label]['mAP'])
        print(f'{label}: {args.iou_type} AP per bin {ap}')
    for file in plot_occlusion(curves, args.out, args.iou_type):
        print(f'wrote {file}')


if __name__ == '__main__':
    main()
