"""The demo's AP over training seeds: how far apart runs of one model land.

Each WORK_DIR is a finished ``tools/demo.py`` run (its ``results.json``) of
the same models, epochs and data with another ``--seed``. Prints, in
markdown, the bbox AP of each model per seed, the difference between the
first two models per seed, and per column the mean and the range
(max - min); ``--out`` also writes it to a file.

Example (the seed spread of docs/demo.md):
    python tools/demo.py; python tools/demo.py --seed 1
    python tools/demo.py --seed 2
    python tools/demo_seeds.py work_dirs/demo work_dirs/demo-seed1 \
        work_dirs/demo-seed2
"""
import tool_utils  # noqa: F401,I001 (first: see tools/tool_utils)
import argparse
import os
import os.path as osp
import statistics
from typing import Dict, List, Optional, Sequence

from sharedbasis_mm.utils.validation import (check_writable_dir,
                                             load_json_file)

from tool_utils import DefaultsHelpFormatter

METRIC = 'coco/bbox_mAP'
# what runs of the demo with other seeds share
SETUP = ('train_images', 'val_images', 'data_seed')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter,
        description=__doc__.split('\n')[0])
    parser.add_argument(
        'work_dirs',
        nargs='+',
        metavar='WORK_DIR',
        help='work directories of tools/demo.py runs, one per seed')
    parser.add_argument('--out', help='also write the table to this file')
    args = parser.parse_args(argv)
    if len(args.work_dirs) < 2:
        parser.error('WORK_DIR: a spread needs runs of at least 2 seeds, '
                     f'got {len(args.work_dirs)}')
    return args


def load_runs(work_dirs: Sequence[str]) -> List[List[Dict]]:
    """The models of each work dir's demo; each must have trained the same
    models for the same steps on the same data as the first, with a seed of
    its own."""
    runs, setups = [], []
    for work_dir in work_dirs:
        path = osp.join(work_dir, 'results.json')
        run = load_json_file(path, 'results file of WORK_DIR',
                             SETUP + ('models', ))
        models = run['models']
        if not models or not all(
                isinstance(model, dict) and METRIC in model.get('metrics', {})
                for model in models):
            raise ValueError(
                f'WORK_DIR: {path} holds no finished demo run (expected '
                f'"models", each with "metrics" holding {METRIC!r})')
        runs.append(models)
        setups.append({key: run[key] for key in SETUP} | dict(
            models=[(m['name'], m['epochs'], m['iterations'])
                    for m in models]))
    seeds = {}
    for work_dir, models, setup in zip(work_dirs, runs, setups):
        if setup != setups[0]:
            raise ValueError(
                f'WORK_DIR: {work_dir} ran {setup}, but {work_dirs[0]} '
                f'{setups[0]}; expected runs of the same demo (models as '
                '(name, epochs, steps), data) with other seeds')
        seed = models[0]['seed']
        if seed in seeds:
            raise ValueError(f'WORK_DIR: {work_dir} and {seeds[seed]} both '
                             f'ran seed {seed}; expected one run per seed')
        seeds[seed] = work_dir
    return runs


def seed_table(runs: Sequence[Sequence[Dict]]) -> List[str]:
    """The markdown table: AP per seed and model, the difference of the
    first two models, their means and ranges."""
    names = [r['name'] for r in runs[0]]
    header = ['seed'] + [f'`{name}` AP' for name in names]
    if len(names) > 1:
        header.append(f'`{names[0]}` - `{names[1]}`')
    rows = []
    for results in runs:
        values = [r['metrics'][METRIC] for r in results]
        if len(names) > 1:
            values.append(values[0] - values[1])
        rows.append((results[0]['seed'], values))
    columns = list(zip(*(values for _, values in rows)))
    lines = ['| ' + ' | '.join(header) + ' |', '|' + ' --- |' * len(header)]
    lines += [
        f'| {seed} | ' + ' | '.join(f'{v:+.3f}' if i == len(names) else
                                    f'{v:.3f}'
                                    for i, v in enumerate(values)) + ' |'
        for seed, values in rows
    ]
    lines.append('| mean | ' + ' | '.join(
        f'{statistics.mean(c):.3f}' for c in columns) + ' |')
    lines.append('| range (max - min) | ' + ' | '.join(
        f'{max(c) - min(c):.3f}' for c in columns) + ' |')
    first = runs[0][0]
    lines += [
        '', f'bbox AP of {len(runs)} training seeds, {first["epochs"]} '
        f'epochs ({first["iterations"]} steps) each, on the same data.'
    ]
    return lines


def main() -> None:
    args = parse_args()
    try:
        if args.out:
            if osp.isdir(args.out):
                raise IsADirectoryError(f'--out {args.out!r} is a folder; '
                                        'expected a file path')
            check_writable_dir('--out', osp.dirname(osp.abspath(args.out)))
        lines = seed_table(load_runs(args.work_dirs))
    except (OSError, ValueError) as error:
        raise SystemExit(f'demo_seeds: {error}')
    text = '\n'.join(lines) + '\n'
    print(text, end='')
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(text)


if __name__ == '__main__':
    main()
