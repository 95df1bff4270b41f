"""The demo: detection with a shared-basis backbone on a synthetic set.

Usage:
    python tools/demo.py [--work-dir work_dirs/demo] [--epochs N]

1. generates the synthetic occlusion data set (``tools/make_synthetic_coco.py``;
   kept between runs, deterministic from ``--seed``);
2. trains the detector of ``configs/demo/`` (a Faster R-CNN with a
   shared-basis ResNet-18 and the orthogonality regularization) on the CPU;
3. evaluates it: COCO AP and AP per occlusion bin (``OcclusionRatioMetric``);
4. writes the AP-versus-occlusion plot and a short report (parameters,
   FLOPs, AP, times) to the work dir and prints where they are.
"""
import _quiet_imports  # noqa: F401,I001 (first: see the module)
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import Runner

from sharedbasis_mm.analysis import count_flops, count_parameters
from sharedbasis_mm.datasets import make_synthetic_coco
from sharedbasis_mm.utils import DefaultsHelpFormatter

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(ROOT, 'configs', 'demo',
                  'faster-rcnn_r18-s8u1_fpn_synthetic.py')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter,
        description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=CONFIG, help='detector config')
    parser.add_argument('--work-dir', default=osp.join('work_dirs', 'demo'),
                        help='data set, checkpoints, plot and report')
    parser.add_argument('--train', type=int, default=1200,
                        help='training images')
    parser.add_argument('--val', type=int, default=200,
                        help='validation images')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the data set and the training')
    parser.add_argument('--epochs', type=int, default=None,
                        help='training epochs (default: the config\'s)')
    return parser.parse_args()


def make_data(data_root: str, num_train: int, num_val: int,
              seed: int) -> None:
    for split, count in (('train', num_train), ('val', num_val)):
        ann_file = osp.join(data_root, 'annotations',
                            f'instances_{split}.json')
        if osp.exists(ann_file):
            with open(ann_file) as f:
                if len(json.load(f)['images']) == count:
                    continue
        print_log(f'generating {count} synthetic {split} images in '
                  f'{data_root}', logger='current')
        coco = make_synthetic_coco(
            data_root, split, count, seed=seed, num_workers=os.cpu_count())
        os.makedirs(osp.dirname(ann_file), exist_ok=True)
        with open(ann_file, 'w') as f:
            json.dump(coco, f)


def demo_config(args: argparse.Namespace, data_root: str) -> Config:
    cfg = Config.fromfile(args.config)
    cfg.work_dir = args.work_dir
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    for evaluator in ('val_evaluator', 'test_evaluator'):
        cfg[evaluator].ann_file = osp.join(data_root, 'annotations',
                                           'instances_val.json')
    cfg.test_evaluator.outfile_prefix = osp.join(args.work_dir, 'results')
    if args.epochs is not None:
        cfg.train_cfg.max_epochs = args.epochs
        cfg.train_cfg.val_interval = args.epochs
    return cfg


def feature_flops(model: nn.Module, image_size: tuple) -> int:
    """Multiply-adds of the detector's backbone and neck on one image."""
    return count_flops(nn.Sequential(model.backbone, model.neck),
                       (3, *image_size))


def write_report(path: str, rows: dict, metrics: dict) -> None:
    bins = sorted(
        key.rsplit('_', 1)[-1] for key in metrics
        if '/occ/bbox_mAP_75_' in key)
    lines = ['# sharedbasis_mm demo', '', '| | |', '| --- | --- |']
    lines += [f'| {key} | {value} |' for key, value in rows.items()]
    lines += [
        '', '## bbox AP per image occlusion ratio', '',
        '| occlusion | images | AP | AP50 | AP75 |',
        '| --- | --- | --- | --- | --- |'
    ]
    for label in bins:
        values = [
            metrics.get(f'coco/occ/num_images_{label}'),
            metrics.get(f'coco/occ/bbox_mAP_{label}'),
            metrics.get(f'coco/occ/bbox_mAP_50_{label}'),
            metrics.get(f'coco/occ/bbox_mAP_75_{label}')
        ]
        lines.append(f'| {label} | ' + ' | '.join(
            f'{v:.3f}' if isinstance(v, float) else str(v)
            for v in values) + ' |')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    data_root = osp.join(args.work_dir, 'data')
    make_data(data_root, args.train, args.val, args.seed)
    cfg = demo_config(args, data_root)
    runner = Runner.from_cfg(cfg)
    params = count_parameters(runner.model)
    train_start = time.perf_counter()
    runner.train()
    train_time = time.perf_counter() - train_start
    test_start = time.perf_counter()
    metrics = runner.test()
    test_time = time.perf_counter() - test_start
    flops = feature_flops(runner.model, cfg.image_size)

    plot = osp.join(args.work_dir, 'ap_vs_occlusion')
    subprocess.run([
        sys.executable,
        osp.join(ROOT, 'tools', 'plot_occlusion.py'),
        cfg.test_evaluator.outfile_prefix + '.occlusion.json', '--labels',
        cfg.model.backbone.type, '--out', plot
    ], check=True)
    report = osp.join(args.work_dir, 'report.md')
    rows = {
        'config': osp.relpath(args.config, ROOT),
        'data': f'{args.train} train / {args.val} val synthetic images '
        f'(seed {args.seed})',
        'parameters': f'{params / 1e6:.3f}M',
        'FLOPs of backbone + FPN, one '
        f'{cfg.image_size[0]}x{cfg.image_size[1]} image': f'{flops / 1e9:.3f}G',
        'epochs': cfg.train_cfg.max_epochs,
        'bbox mAP': f"{metrics['coco/bbox_mAP']:.3f}",
        'bbox AP50 / AP75': f"{metrics['coco/bbox_mAP_50']:.3f} / "
        f"{metrics['coco/bbox_mAP_75']:.3f}",
        'training time': f'{train_time / 60:.1f} min',
        'evaluation time': f'{test_time:.0f} s',
        'total time': f'{(time.perf_counter() - start) / 60:.1f} min',
        # CPU time of this process's threads: on a shared machine the
        # elapsed time also counts the time other jobs held the cores
        'CPU time of the main process':
        f'{time.process_time() / 60:.1f} min on {os.cpu_count()} cores',
    }
    write_report(report, rows, metrics)
    print('\n' + open(report).read())
    print(f'report: {report}\nplot: {plot}.png, {plot}.svg\n'
          f'checkpoints and logs: {args.work_dir}')


if __name__ == '__main__':
    main()
