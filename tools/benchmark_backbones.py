"""Latency, throughput and peak memory of backbones beside their baselines.

Usage:
    python tools/benchmark_backbones.py [--models NAME ...]
        [--engine torch|onnxruntime] [--channels-last] [--compile]
        [--batch-sizes 1 8] [--input-size 224] [--device cpu|cuda]
        [--threads N] [--clock wall|cpu] [--repeats R] [--out-dir DIR]

Every backbone of ``BACKBONES`` (or those named by ``--models``, with their
baselines) is built with random weights and run in eval mode, without
gradients, on random ``N x 3 x S x S`` batches. The latencies of all
backbones at one batch size are measured in interleaved blocks
(:func:`sharedbasis_mm.analysis.benchmark.benchmark`), so the ratios to the
baselines are measured in one run and fair on a loaded machine (on a shared
CPU, ``--clock cpu --threads 1`` times CPU time instead of elapsed time, which
is robust to other processes taking the core). Throughput
is images per second at the largest batch; peak memory (torch engine only)
is what one call at that batch allocates beyond the weights and inputs. A
``-fused`` backbone is passed through :func:`sharedbasis_mm.layers.fuse_model`
(shared bases into plain convolutions, tied layers into their deploy form,
BatchNorms folded), the structure that ``deploy=True`` builds; compare a
fused backbone with ``ResNet50-fused`` (ResNet50 with its BN folded), the
baseline deployed the same way.

Engines (``--engine``): ``torch`` runs the modules eagerly (``--compile``:
through ``torch.compile``, which needs a C++ compiler on the CPU;
``--channels-last``: models and inputs in ``torch.channels_last``);
``onnxruntime`` exports each backbone at each batch size with the export of
``tools/deployment/fuse_model.py --onnx``
(:func:`tool_utils.deployment.export_onnx`, into ``DIR/onnx/``) and times
``InferenceSession.run`` with every graph optimisation, ``--threads``
intra-op threads, on the CPU or, with ``--device cuda``, CUDA
(onnxruntime-gpu).

``--profile`` also profiles one call of each backbone at the largest batch
in the engine (``torch.profiler``, or onnxruntime's session profiling) and
writes ``DIR/profile.csv``: the time of its convolutions grouped by kernel
and channels per group, and of the rest, with their shares of the call.

Writes ``DIR/backbones.csv`` (one row per backbone), ``DIR/ratios.csv``
(one row per backbone and baseline) and ``DIR/backbones.json`` (both, with
the machine).
"""
import tool_utils  # noqa: F401,I001 (first: see tools/tool_utils)
import argparse
import csv
import json
import os
import os.path as osp
import shutil
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

import sharedbasis_mm  # noqa: F401
from sharedbasis_mm.analysis import count_flops, count_parameters
from sharedbasis_mm.analysis.benchmark import (benchmark, check_clock,
                                               describe_machine, peak_memory,
                                               summarize)
from sharedbasis_mm.layers import fuse_model

from tool_utils import DefaultsHelpFormatter, int_at_least
from tool_utils.benchmark_options import add_timing_arguments
from tool_utils.deployment import export_onnx, onnx_providers, onnx_session
from tool_utils.profiling import profile_onnxruntime, profile_torch

ENGINES = ('torch', 'onnxruntime')


class Backbone(NamedTuple):
    """A benchmarked backbone.

    Args:
        name (str): Its name in the tables and for ``--models``.
        cfg (dict): Its config, built in the mmpretrain scope.
        baselines (tuple[str]): Names of the backbones it is compared with.
        fuse (bool): Whether to apply ``fuse_model`` after building it.
    """
    name: str
    cfg: Dict
    baselines: Tuple[str, ...] = ()
    fuse: bool = False


RESNET34_S48U1 = dict(
    type='SharedBasisResNet',
    depth=34,
    shared_rank=48,
    unique_rank=1,
    num_bases=2,
    out_indices=(3, ))
TIED_RESNET50 = dict(type='TiedResNet', depth=50, out_indices=(3, ))
TIED_RESNET50_S = dict(
    type='TiedResNet',
    depth=50,
    base_width=18,
    split_blocks=(1, 2, 2, 2),
    out_indices=(3, ))

BACKBONES = [
    Backbone('ResNet34', dict(type='mmdet.ResNet', depth=34,
                              out_indices=(3, ))),
    Backbone(
        'ResNet34-fused',
        dict(type='mmdet.ResNet', depth=34, out_indices=(3, )),
        ('ResNet34', ),
        fuse=True),
    Backbone('ResNet34-S48U1', RESNET34_S48U1, ('ResNet34', )),
    Backbone(
        'ResNet34-S48U1-fused',
        RESNET34_S48U1, ('ResNet34', 'ResNet34-fused'),
        fuse=True),
    Backbone('ResNet50', dict(type='mmdet.ResNet', depth=50,
                              out_indices=(3, ))),
    Backbone(
        'ResNet50-fused',
        dict(type='mmdet.ResNet', depth=50, out_indices=(3, )),
        ('ResNet50', ),
        fuse=True),
    Backbone(
        'ResNet50-Shared',
        dict(type='SharedBasisResNet', depth=50, share='conv2',
             out_indices=(3, )), ('ResNet50', )),
    Backbone(
        'ResNet50-Shared-fused',
        dict(type='SharedBasisResNet', depth=50, share='conv2',
             out_indices=(3, )), ('ResNet50', 'ResNet50-fused'),
        fuse=True),
    Backbone('ResNet101',
             dict(type='mmdet.ResNet', depth=101, out_indices=(3, ))),
    Backbone(
        'ResNet101-Shared',
        dict(type='SharedBasisResNet', depth=101, share='conv2',
             out_indices=(3, )), ('ResNet101', )),
    Backbone('TiedResNet50', TIED_RESNET50, ('ResNet50', )),
    Backbone(
        'TiedResNet50-fused',
        TIED_RESNET50, ('ResNet50', 'ResNet50-fused'),
        fuse=True),
    Backbone('TiedResNet50-S', TIED_RESNET50_S, ('ResNet50', )),
    Backbone(
        'TiedResNet50-S-fused',
        TIED_RESNET50_S, ('ResNet50', 'ResNet50-fused'),
        fuse=True),
    Backbone('MobileNetV2', dict(type='MobileNetV2')),
    Backbone(
        'MobileNetV2-fused',
        dict(type='MobileNetV2'), ('MobileNetV2', ),
        fuse=True),
    Backbone(
        'MobileNetV2-Shared',
        dict(type='SharedBasisMobileNetV2', share='expand'),
        ('MobileNetV2', )),
    Backbone(
        'MobileNetV2-Shared-fused',
        dict(type='SharedBasisMobileNetV2', share='expand'),
        ('MobileNetV2', 'MobileNetV2-fused'),
        fuse=True),
]


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter,
        description=__doc__.split('\n')[0])
    parser.add_argument(
        '--models',
        nargs='+',
        choices=[b.name for b in BACKBONES],
        metavar='NAME',
        help='backbones to run, their baselines added (default: all: '
        + ', '.join(b.name for b in BACKBONES) + ')')
    parser.add_argument(
        '--batch-sizes',
        nargs='+',
        type=int_at_least(1),
        default=[1, 8],
        help='batch sizes timed')
    parser.add_argument(
        '--input-size',
        type=int_at_least(1),
        default=224, help='H = W of the input')
    parser.add_argument(
        '--engine',
        choices=ENGINES,
        default='torch',
        help='torch: the modules, eagerly or compiled; onnxruntime: their '
        'ONNX export')
    parser.add_argument(
        '--channels-last',
        action='store_true',
        help='run models and inputs in torch.channels_last (torch engine)')
    parser.add_argument(
        '--compile',
        action='store_true',
        help='run the models through torch.compile (torch engine; needs a '
        'C++ compiler on the CPU)')
    add_timing_arguments(parser, block_time=0.5, unit='backbone')
    parser.add_argument(
        '--no-flops', action='store_true', help='skip counting FLOPs')
    parser.add_argument(
        '--profile',
        action='store_true',
        help='profile one call of each backbone at the largest batch '
        '(DIR/profile.csv)')
    parser.add_argument(
        '--out-dir',
        default=osp.join('work_dirs', 'benchmark_backbones'),
        help='where the tables are written')
    return parser.parse_args(argv)


def selected_backbones(names: Optional[List[str]]) -> List[Backbone]:
    """The backbones named (all if None) and their baselines, in order."""
    if names is None:
        return list(BACKBONES)
    by_name = {b.name: b for b in BACKBONES}
    wanted = set(names)
    wanted.update(baseline for name in names
                  for baseline in by_name[name].baselines)
    return [b for b in BACKBONES if b.name in wanted]


def check_engine(args: argparse.Namespace) -> None:
    """Exit with a clear message where the engine cannot run as asked."""
    if args.engine == 'onnxruntime':
        for option, why in (
            ('compile', 'onnxruntime optimises the exported graph itself'),
            ('channels_last', 'the exported graph is NCHW and onnxruntime '
             'chooses its own layout')):
            if getattr(args, option):
                raise SystemExit(
                    f'benchmark_backbones: --{option.replace("_", "-")} is '
                    f'an option of --engine torch: {why}')
        try:
            onnx_providers(args.device)
        except ImportError as error:
            raise SystemExit(f'benchmark_backbones: --engine onnxruntime '
                             f'needs onnxruntime: {error}')
        except ValueError as error:
            raise SystemExit(f'benchmark_backbones: {error}')
    if (args.compile and args.device == 'cpu' and not any(
            shutil.which(c)
            for c in (os.environ.get('CXX', 'g++'), 'g++', 'clang++'))):
        raise SystemExit(
            'benchmark_backbones: --compile on the CPU needs a C++ compiler '
            '(torch.compile\'s inductor backend builds C++ kernels); none '
            'found (CXX, g++, clang++)')


def build_backbone(backbone: Backbone, args: argparse.Namespace) -> nn.Module:
    """The backbone built, fused if asked, in eval mode on the device (and
    in ``channels_last`` if asked)."""
    model = MODELS.build(backbone.cfg)
    if backbone.fuse:
        fuse_model(model)
    model.eval()
    model.to(args.device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def inference(model: nn.Module,
              inputs: torch.Tensor) -> Callable[[], object]:
    """One forward call of ``model`` without gradients."""

    def call():
        with torch.no_grad():
            return model(inputs)

    return call


def onnx_path(args: argparse.Namespace, name: str, batch: int) -> str:
    """Where the ONNX export of backbone ``name`` at ``batch`` goes."""
    return osp.join(args.out_dir, 'onnx', f'{name}_b{batch}.onnx')


def profile_rows(models: Dict[str, nn.Module], inputs: torch.Tensor,
                 args: argparse.Namespace) -> List[Dict]:
    """The profile of one call of each model on ``inputs`` in the engine:
    one row per model and op (convolutions per shape)."""
    rows = []
    for name, model in models.items():
        if args.engine == 'torch':
            profiled = profile_torch(inference(model, inputs))
        else:
            profiled = profile_onnxruntime(
                onnx_path(args, name, len(inputs)),
                {'input': inputs.cpu().numpy()}, args.device, args.threads)
        rows += [dict(name=name, **row) for row in profiled]
    return rows


def engine_tasks(models: Dict[str, nn.Module], inputs: torch.Tensor,
                 args: argparse.Namespace) -> Dict[str, Callable[[], object]]:
    """One call of each model on ``inputs`` in the engine of ``args``, each
    called once (compilation, the first run's allocations)."""
    if args.engine == 'torch':
        tasks = {
            name: inference(
                torch.compile(model) if args.compile else model, inputs)
            for name, model in models.items()
        }
    else:
        os.makedirs(osp.join(args.out_dir, 'onnx'), exist_ok=True)
        feed = {'input': inputs.cpu().numpy()}
        tasks = {}
        for name, model in models.items():
            path = onnx_path(args, name, len(inputs))
            export_onnx(model, inputs, path)
            session = onnx_session(path, args.device, args.threads)
            tasks[name] = (
                lambda session=session: session.run(None, feed))
    for task in tasks.values():
        task()
    return tasks


def ratio_rows(rows: List[Dict], backbones: List[Backbone]) -> List[Dict]:
    """Each backbone's figures over each of its baselines'."""
    by_name = {row['name']: row for row in rows}
    keys = [key for key in rows[0] if key.startswith(('latency_', 'params',
                                                       'flops', 'peak_',
                                                       'throughput'))
            and not key.endswith('_iqr')]
    ratios = []
    for backbone in backbones:
        for baseline in backbone.baselines:
            row, base = by_name[backbone.name], by_name[baseline]
            ratios.append(
                dict(
                    name=backbone.name,
                    baseline=baseline,
                    **{
                        key: (row[key] / base[key]
                              if row[key] and base[key] else None)
                        for key in keys
                    }))
    return ratios


def format_table(rows: List[Dict], columns: List[str]) -> str:
    cells = [columns] + [[
        f'{row[c]:.3g}' if isinstance(row[c], float) else str(row[c])
        for c in columns
    ] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = [
        '  '.join(cell.ljust(width) for cell, width in zip(line, widths))
        for line in cells
    ]
    lines.insert(1, '  '.join('-' * width for width in widths))
    return '\n'.join(lines)


def write_csv(path: str, rows: List[Dict]) -> None:
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    check_clock(args.clock, args.threads, args.device)
    check_engine(args)
    torch.set_num_threads(args.threads)
    init_default_scope('mmpretrain')
    machine = describe_machine(args.device, args.threads)
    machine['engine'] = args.engine + (' (torch.compile)'
                                       if args.compile else '')
    if args.engine == 'onnxruntime':
        import onnxruntime
        machine['onnxruntime'] = onnxruntime.__version__
    print(f'machine: {machine}')
    backbones = selected_backbones(args.models)
    shape = (3, args.input_size, args.input_size)
    models, rows = {}, []
    for backbone in backbones:
        print(f'building {backbone.name} ...', flush=True)
        model = build_backbone(backbone, args)
        models[backbone.name] = model
        flops = None if args.no_flops else count_flops(model, shape)
        rows.append(
            dict(
                name=backbone.name,
                params=count_parameters(model),
                flops=flops))
    memory_format = (
        torch.channels_last if args.channels_last else torch.contiguous_format)
    for batch in args.batch_sizes:
        print(f'timing batch {batch} ...', flush=True)
        inputs = torch.randn(
            batch, *shape,
            device=args.device).contiguous(memory_format=memory_format)
        measurements = benchmark(
            engine_tasks(models, inputs, args),
            repeats=args.repeats,
            block_time=args.block_time,
            num_threads=args.threads,
            clock=args.clock)
        for row in rows:
            summary = summarize(measurements[row['name']])
            row[f'latency_b{batch}_ms'] = summary['median'] * 1e3
            row[f'latency_b{batch}_iqr'] = summary['iqr'] * 1e3
    batch = max(args.batch_sizes)
    inputs = torch.randn(
        batch, *shape,
        device=args.device).contiguous(memory_format=memory_format)
    for row in rows:
        row['throughput_img_s'] = batch / row[f'latency_b{batch}_ms'] * 1e3
        if args.engine == 'torch':
            row[f'peak_memory_b{batch}_mib'] = peak_memory(
                inference(models[row['name']], inputs), args.device) / 2**20
    ratios = ratio_rows(rows, backbones)
    os.makedirs(args.out_dir, exist_ok=True)
    if args.profile:
        profiled = profile_rows(models, inputs, args)
        columns = ['name', 'op', 'kernel', 'in_per_group', 'out_per_group',
                   'groups', 'calls', 'time_ms', 'share']
        profiled = [{c: row.get(c, '') for c in columns} for row in profiled]
        write_csv(osp.join(args.out_dir, 'profile.csv'), profiled)
        for name in models:
            top = [row for row in profiled if row['name'] == name][:8]
            print(f'\nprofile of {name} (batch {batch}), longest first\n' +
                  format_table(top, columns[1:]))

    write_csv(osp.join(args.out_dir, 'backbones.csv'), rows)
    if ratios:
        write_csv(osp.join(args.out_dir, 'ratios.csv'), ratios)
    json_path = osp.join(args.out_dir, 'backbones.json')
    with open(json_path, 'w') as f:
        json.dump(
            dict(machine=machine, args=vars(args), backbones=rows,
                 ratios=ratios),
            f,
            indent=2)
    print('\n' + format_table(rows, list(rows[0])))
    if ratios:
        print('\nratios to the baselines\n' +
              format_table(ratios, list(ratios[0])))
    print(f'\nwritten to {args.out_dir}: backbones.csv, '
          f'{"ratios.csv, " if ratios else ""}backbones.json')


if __name__ == '__main__':
    main()
