"""Parameters and FLOPs of every model config next to the papers' figures.

Usage:
    python tools/analysis_tools/model_table.py [CONFIG_OR_DIR ...] \\
        [--out-dir DIR]

Every config with a ``paper_reference`` (default: all of ``configs/``) is
built; its parameters and FLOPs (mmengine's analysis, multiply-adds, at the
paper's input size) are printed next to the paper's and written to
``DIR/model_table.csv`` and ``DIR/model_table.json``.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/
import tool_utils  # noqa: E402,F401,I001 (first: see tools/tool_utils)
import argparse
import csv
import json
import os
import time
from typing import List

from mmengine.logging import print_log

import sharedbasis_mm  # noqa: F401
from sharedbasis_mm.analysis import complexity_row

from tool_utils import ROOT, DefaultsHelpFormatter
from tool_utils.config_parsing import package_metafiles_read_once



def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter,
        description=__doc__.split('\n')[0])
    parser.add_argument(
        'configs',
        nargs='*',
        default=[osp.join(ROOT, 'configs')],
        help='config files or folders searched recursively '
        '(default: configs/)')
    parser.add_argument(
        '--out-dir',
        default=osp.join('work_dirs', 'model_table'),
        help='where the CSV and JSON tables are written')
    parser.add_argument(
        '--no-flops', action='store_true', help='count parameters only')
    return parser.parse_args()


def find_configs(paths: List[str]) -> List[str]:
    configs = []
    for path in paths:
        if osp.isdir(path):
            for folder, _, files in sorted(os.walk(path)):
                if osp.basename(folder) == '_base_':
                    continue
                configs += [
                    osp.join(folder, f) for f in sorted(files)
                    if f.endswith('.py')
                ]
        elif osp.isfile(path):
            configs.append(path)
        else:
            sys.exit(f'model_table: no config file or folder at {path}')
    return configs


def format_table(rows: List[dict]) -> str:
    header = ('model', 'source', 'params', 'paper', 'ratio', 'FLOPs',
              'paper', 'ratio', 'attention', 'paper')
    lines = [header]
    for row in rows:
        flops = row['flops']
        lines.append((
            osp.splitext(osp.basename(row['config']))[0],
            row['source'],
            f"{row['params'] / 1e6:.2f}M",
            f"{row['paper_params'] / 1e6:.2f}M",
            f"{row['params_ratio']:.3f}",
            f'{flops / 1e9:.2f}G' if flops is not None else '-',
            f"{row['paper_flops'] / 1e9:.2f}G" if row['paper_flops'] else '-',
            f"{row['flops_ratio']:.3f}" if flops is not None else '-',
            *(f'{count / 1e6:.3f}M' if count is not None else '-'
              for count in (row['attention_params'],
                            row['paper_attention_params'])),
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        '  '.join(cell.ljust(width) for cell, width in zip(line, widths))
        for line in lines
    ]
    text.insert(1, '  '.join('-' * width for width in widths))
    return '\n'.join(text)


def main() -> None:
    args = parse_args()
    configs = find_configs(args.configs)
    rows = []
    with package_metafiles_read_once():
        for index, config in enumerate(configs, 1):
            start = time.perf_counter()
            row = complexity_row(config, with_flops=not args.no_flops)
            if row is None:
                continue
            rows.append(row)
            print_log(
                f'[{index}/{len(configs)}] {osp.relpath(config)}: '
                f"{row['params'] / 1e6:.2f}M params"
                + (f", {row['flops'] / 1e9:.2f}G FLOPs"
                   if row['flops'] is not None else '')
                + f' ({time.perf_counter() - start:.1f}s)',
                logger='current')
    if not rows:
        sys.exit(f'model_table: no config under {" ".join(args.configs)} has '
                 'a paper_reference; the model table lists the configs that '
                 "reproduce a paper's table (configs/baselines, "
                 'configs/shared_basis, configs/tied, configs/detection, ...)')
    os.makedirs(args.out_dir, exist_ok=True)
    csv_path = osp.join(args.out_dir, 'model_table.csv')
    with open(csv_path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    json_path = osp.join(args.out_dir, 'model_table.json')
    with open(json_path, 'w') as f:
        json.dump(rows, f, indent=2)
    print(format_table(rows))
    print(f'\nwritten: {csv_path}, {json_path}')


if __name__ == '__main__':
    main()
