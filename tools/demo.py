"""The demo: a shared-basis detector against its plain baseline, side by side.

Usage:
    python tools/demo.py [--backbones r18-s8u1 r18 tiedr50] [--seed N]
                         [--work-dir DIR] [--train N] [--val N] [--epochs N]

1. generates the synthetic occlusion data set once for all runs
   (``tools/dataset_converters/make_synthetic_coco.py``; kept between runs,
   deterministic from ``--data-seed``);
2. trains each detector of ``--backbones`` (configs in ``configs/demo/``;
   the same Faster R-CNN, data, schedule and seed, only the backbone
   differs) on the CPU, one after the other, in ``WORK_DIR/<backbone>``;
3. evaluates each: COCO AP and AP per occlusion bin
   (``CocoOcclusionRatioMetric``);
4. writes one report with the models side by side (parameters, FLOPs,
   times, AP, AP per occlusion bin, orthogonality error of the shared
   bases), the AP-versus-occlusion plot with a line per model (the Tied
   Block Convolution paper's Figure 7) and the plot's data, and prints where
   they are.
"""
import tool_utils  # noqa: F401,I001 (first: see tools/tool_utils)
import argparse
import importlib.util
import json
import os
import os.path as osp
import time
from collections import OrderedDict
from types import ModuleType
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import Runner

from sharedbasis_mm.analysis import count_flops, count_parameters
from sharedbasis_mm.analysis.benchmark import describe_machine
from sharedbasis_mm.layers import find_shared_bases, orthogonality_error

from dataset_converters.synthetic_coco import make_synthetic_coco
from tool_utils import ROOT, DefaultsHelpFormatter, int_at_least

CONFIG_DIR = osp.join(ROOT, 'configs', 'demo')
# --backbones: name -> (config in configs/demo/, label in the report)
BACKBONES = OrderedDict([
    ('r18-s8u1', ('faster-rcnn_r18-s8u1_fpn_synthetic.py',
                  'shared-basis ResNet-18 S8U1')),
    ('r18', ('faster-rcnn_r18_fpn_synthetic.py', 'ResNet-18')),
    ('tiedr50', ('faster-rcnn_tiedr50-4s4w_fpn_synthetic.py',
                 'TiedResNet-50 4s x 4w')),
])
DEFAULT_BACKBONES = ('r18-s8u1', 'r18')
ORTHOGONALITY_ROW = ('orthogonality error of the shared bases at the end, '
                     'sum of ‖WᵀW − I‖² (eq. 7)')
LIMITS = (
    'What this comparison can show: the parameters and FLOPs of the models '
    '(exact), and their AP on the same {val} validation images after the '
    'same {epochs} epochs from the same seed. What it cannot show: whether '
    'an AP difference is more than the run-to-run noise. Each model was '
    'trained once (seed {seed}), from scratch, on {train} small synthetic '
    'images; another seed may move the AP of each model (run `--seed 1` '
    'and `--seed 2` and compare with `tools/demo_seeds.py`; see the '
    'docs/demo.md), and an '
    'occlusion bin holds only the images counted in its row, so per-bin '
    'differences are noisier still. A seeded run reproduces its losses and '
    'AP on the same CPU model only ({cpu} here): another CPU model rounds '
    'the same computation differently, and the same seed gives other '
    'figures there. '
    'Nor does it show how the backbones compare when pretrained on ImageNet '
    'and trained on COCO, the papers\' setting.')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter,
        description=__doc__.split('\n')[0])
    parser.add_argument(
        '--backbones',
        nargs='+',
        default=list(DEFAULT_BACKBONES),
        metavar='NAME',
        help='the detectors to train, in this order, one of each: ' +
        ', '.join(f'{name} ({label}, configs/demo/{config})'
                  for name, (config, label) in BACKBONES.items()) +
        f' (default: {" ".join(DEFAULT_BACKBONES)})')
    parser.add_argument(
        '--seed',
        type=int_at_least(0),
        default=None,
        help='seed of the training runs (initial weights, data order, '
        'augmentation); default: the configs\' (0)')
    parser.add_argument(
        '--work-dir',
        default=None,
        help='default: work_dirs/demo, work_dirs/demo-seed<N> with --seed N')
    parser.add_argument(
        '--train', type=int_at_least(1), default=1200,
        help='training images')
    parser.add_argument(
        '--val', type=int_at_least(1), default=200,
        help='validation images')
    parser.add_argument(
        '--data-seed',
        type=int_at_least(0),
        default=0,
        help='seed of the synthetic data set (default: 0)')
    parser.add_argument(
        '--epochs',
        type=int_at_least(1),
        default=None,
        help='training epochs (default: the configs\')')
    args = parser.parse_args(argv)
    unknown = [name for name in args.backbones if name not in BACKBONES]
    if unknown:
        parser.error(f'--backbones: unknown {", ".join(unknown)}; expected '
                     f'names among {", ".join(BACKBONES)}')
    if len(set(args.backbones)) != len(args.backbones):
        parser.error(f'--backbones: each name once, got '
                     f'{" ".join(args.backbones)}')
    if args.work_dir is None:
        args.work_dir = osp.join(
            'work_dirs', 'demo' if not args.seed else f'demo-seed{args.seed}')
    return args


def make_data(data_root: str, num_train: int, num_val: int,
              seed: int) -> None:
    """Generate the train and val splits unless they exist, as asked."""
    for split, count in (('train', num_train), ('val', num_val)):
        ann_file = osp.join(data_root, 'annotations',
                            f'instances_{split}.json')
        if osp.exists(ann_file):
            with open(ann_file) as f:
                coco = json.load(f)
            if (len(coco['images']) == count
                    and coco.get('info', {}).get('seed') == seed):
                continue
        print_log(
            f'generating {count} synthetic {split} images (seed {seed}) in '
            f'{data_root}',
            logger='current')
        coco = make_synthetic_coco(
            data_root, split, count, seed=seed, num_workers=os.cpu_count())
        coco['info'] = dict(seed=seed)
        os.makedirs(osp.dirname(ann_file), exist_ok=True)
        with open(ann_file, 'w') as f:
            json.dump(coco, f)


def demo_config(config: str, work_dir: str, data_root: str,
                args: argparse.Namespace) -> Config:
    """The config of one run: data, work dir, seed and epochs of the demo."""
    cfg = Config.fromfile(config)
    cfg.work_dir = work_dir
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    for evaluator in ('val_evaluator', 'test_evaluator'):
        cfg[evaluator].ann_file = osp.join(data_root, 'annotations',
                                           'instances_val.json')
    cfg.test_evaluator.outfile_prefix = osp.join(work_dir, 'results')
    if args.seed is not None:
        cfg.randomness = dict(seed=args.seed)
    if args.epochs is not None:
        cfg.train_cfg.max_epochs = args.epochs
        cfg.train_cfg.val_interval = args.epochs
    return cfg


def orthogonality(model: nn.Module) -> Dict[str, float]:
    """Sum over the shared bases of ``||W^T W - I||_F^2`` (eq. 7) and the
    number of bases."""
    bases = find_shared_bases(model)
    with torch.no_grad():
        total = sum(
            float(orthogonality_error(basis, 'sum'))
            for basis in bases.values())
    return dict(num_bases=len(bases), error=total)


def run(name: str, index: int, args: argparse.Namespace,
        data_root: str) -> Dict:
    """Train and test one detector; return its figures."""
    config, label = BACKBONES[name]
    config = osp.join(CONFIG_DIR, config)
    work_dir = osp.join(args.work_dir, name)
    cfg = demo_config(config, work_dir, data_root, args)
    print_log(
        f'[{index}/{len(args.backbones)}] {name}: training {label} '
        f'({osp.relpath(config, ROOT)}) for {cfg.train_cfg.max_epochs} '
        f'epochs, seed {cfg.randomness.seed}; logs and checkpoint in '
        f'{osp.abspath(work_dir)}',
        logger='current')
    runner = Runner.from_cfg(cfg)
    model = runner.model
    cpu_start = time.process_time()
    train_start = time.perf_counter()
    runner.train()
    train_time = time.perf_counter() - train_start
    cpu_time = time.process_time() - cpu_start
    test_start = time.perf_counter()
    metrics = runner.test()
    test_time = time.perf_counter() - test_start
    size = (3, *cfg.image_size)
    result = dict(
        name=name,
        label=label,
        config=osp.relpath(config, ROOT),
        seed=cfg.randomness.seed,
        epochs=cfg.train_cfg.max_epochs,
        image_size=tuple(cfg.image_size),
        iterations=runner.iter,
        params=count_parameters(model),
        backbone_params=count_parameters(model.backbone),
        backbone_flops=count_flops(model.backbone, size),
        feature_flops=count_flops(
            nn.Sequential(model.backbone, model.neck), size),
        train_time=train_time,
        train_cpu_time=cpu_time,
        test_time=test_time,
        orthogonality=orthogonality(model),
        occlusion_file=osp.abspath(cfg.test_evaluator.outfile_prefix +
                                   '.occlusion.json'),
        metrics=metrics)
    print_log(
        f'[{index}/{len(args.backbones)}] {name}: bbox mAP '
        f"{metrics['coco/bbox_mAP']:.3f}, trained in "
        f'{train_time / 60:.1f} min',
        logger='current')
    return result


def load_plot_tool() -> ModuleType:
    """``tools/analysis_tools/plot_occlusion.py``, which draws Figure 7, as a
    module."""
    spec = importlib.util.spec_from_file_location(
        'plot_occlusion',
        osp.join(ROOT, 'tools', 'analysis_tools', 'plot_occlusion.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def plot(results: Sequence[Dict], out: str) -> List[str]:
    """Draw AP and AP75 against occlusion, a line per model; write the
    plotted points to ``out.json``; return the written files."""
    tool = load_plot_tool()
    curves = OrderedDict(
        (result['label'],
         tool.occlusion_curves(tool.load_metrics(result['occlusion_file']),
                               'bbox')) for result in results)
    files = tool.plot_occlusion(curves, out, 'bbox')
    with open(out + '.json', 'w') as f:
        json.dump(
            dict(
                x='occlusion ratio (bin centre)',
                y='bbox AP (0-1), per model and metric',
                lines=curves),
            f,
            indent=1)
    return files + [out + '.json']


def _ap(value) -> str:
    return f'{value:.3f}' if isinstance(value, float) else str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence]) -> List[str]:
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + ' --- |' * len(header)]
    lines += ['| ' + ' | '.join(map(str, row)) + ' |' for row in rows]
    return lines


def report_lines(results: Sequence[Dict], args: argparse.Namespace,
                 total_time: float, cpu: str) -> List[str]:
    """The report, in markdown: the models side by side, trained on the
    CPU model ``cpu``."""
    first = results[0]

    def row(title, fn):
        return [title] + [fn(result) for result in results]

    def orth(result):
        orth = result['orthogonality']
        if not orth['num_bases']:
            return '- (no shared bases)'
        return f"{orth['error']:.4g} ({orth['num_bases']} bases)"

    rows = [
        row('config', lambda r: f"`{r['config']}`"),
        row('backbone parameters', lambda r: f"{r['backbone_params']:,}"),
        row('detector parameters', lambda r: f"{r['params']:,}"),
        row('backbone GFLOPs, one image',
            lambda r: f"{r['backbone_flops'] / 1e9:.4f}"),
        row('backbone + FPN GFLOPs, one image',
            lambda r: f"{r['feature_flops'] / 1e9:.4f}"),
        row('training time (min)', lambda r: f"{r['train_time'] / 60:.1f}"),
        row('CPU time of the main process in training (min)',
            lambda r: f"{r['train_cpu_time'] / 60:.1f}"),
        row('evaluation time (s)', lambda r: f"{r['test_time']:.0f}"),
        row('bbox AP', lambda r: _ap(r['metrics']['coco/bbox_mAP'])),
        row('bbox AP50', lambda r: _ap(r['metrics']['coco/bbox_mAP_50'])),
        row('bbox AP75', lambda r: _ap(r['metrics']['coco/bbox_mAP_75'])),
        row(ORTHOGONALITY_ROW, orth),
    ]
    labels = [f"{r['label']} (`{r['name']}`)" for r in results]
    lines = [
        '# sharedbasis_mm demo: Faster R-CNN on the synthetic occlusion set',
        '',
        f"{args.train} training / {args.val} validation synthetic images "
        f"(data seed {args.data_seed}), {first['epochs']} epoch(s) "
        f"({first['iterations']} iterations), training seed {first['seed']}, "
        f"on {os.cpu_count()} cores of {cpu}; the whole demo took "
        f'{total_time / 60:.1f} min. Times are wall-clock. FLOPs '
        'are multiply-adds on one '
        f"{'x'.join(map(str, first['image_size']))} image.",
        '',
    ]
    lines += _table([''] + labels, rows)
    bins = sorted(
        key.rsplit('_', 1)[-1] for key in first['metrics']
        if key.startswith('coco/occ/bbox_mAP_75_'))
    occlusion_rows = []
    for label in bins:
        cells = [label, first['metrics'].get(f'coco/occ/num_images_{label}')]
        cells += [
            _ap(result['metrics'].get(f'coco/occ/bbox_mAP_{label}'))
            for result in results
        ]
        occlusion_rows.append(cells)
    lines += [
        '', '## bbox AP per image occlusion ratio', ''
    ] + _table(['occlusion', 'images'] + labels, occlusion_rows)
    lines += [
        '', '## What this can and cannot show', '',
        LIMITS.format(
            val=args.val,
            epochs=first['epochs'],
            seed=first['seed'],
            train=args.train,
            cpu=cpu)
    ]
    return lines


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    data_root = osp.join(args.work_dir, 'data')
    make_data(data_root, args.train, args.val, args.data_seed)
    results = [
        run(name, index, args, data_root)
        for index, name in enumerate(args.backbones, 1)
    ]
    plot_base = osp.abspath(osp.join(args.work_dir, 'ap_vs_occlusion'))
    plot_files = plot(results, plot_base)
    report = osp.abspath(osp.join(args.work_dir, 'report.md'))
    cpu = describe_machine('cpu', torch.get_num_threads())['processor']
    lines = report_lines(results, args, time.perf_counter() - start, cpu)
    lines += ['', f'Plot: {plot_files[0]} (also {", ".join(plot_files[1:])})']
    with open(report, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(
            dict(
                train_images=args.train,
                val_images=args.val,
                data_seed=args.data_seed,
                cpu=cpu,
                models=results),
            f,
            indent=1,
            default=float)
    print('\n' + '\n'.join(lines) + '\n')
    print(f'report: {report}\nplot: {", ".join(plot_files)}\n'
          f'checkpoints and logs: {osp.abspath(args.work_dir)}/<backbone>')


if __name__ == '__main__':
    main()
