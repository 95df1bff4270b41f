"""Time of group and tied block convolution against the block number B.

Usage:
    python tools/benchmark_tbc.py [--shapes 2048x56x56 256x28x28]
        [--blocks 1 2 4 8 16 32] [--device cpu|cuda] [--threads N]
        [--clock wall|cpu] [--repeats R] [--out-dir DIR]

Tied Block Convolution, Figure 3: at a fixed FLOP budget, the time of tied block
convolution (TBC) stays flat as B grows, while that of group convolution
(GC) grows about linearly. For every input shape ``CxHxW`` and block number
B, GC (B groups) and TBC (B blocks) get B times the output filters they have
at B = 1, where both are the standard convolution, so that every
convolution costs the same multiply-adds. TBC is timed in both of its forms
(``impl='fold'`` and ``impl='grouped'``) and as ``impl='auto'``, which
picks the faster of them for each shape (the column ``impl`` says which form
ran), on NCHW and ``channels_last`` tensors, for the forward pass (no grad)
and the forward + backward pass (gradients of the input and the weight).
The timings of one input shape,
pass and memory format are measured in interleaved blocks, so their ratios
are fair on a loaded machine (on a shared CPU, ``--clock cpu --threads 1``
times CPU time instead of elapsed time).

Writes ``DIR/tbc_timings.csv``, ``DIR/tbc_timings.json`` (with the machine)
and the Figure-3-style plot ``DIR/tbc_time_vs_blocks.png``.
"""
import tool_utils  # noqa: F401,I001 (first: see tools/tool_utils)
import argparse
import csv
import json
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Tuple

import matplotlib
import torch
import torch.nn as nn

import sharedbasis_mm  # noqa: F401
from sharedbasis_mm.analysis.benchmark import (benchmark, check_clock,
                                               describe_machine, summarize)
from sharedbasis_mm.layers import TiedBlockConv2d

from tool_utils import DefaultsHelpFormatter, int_at_least
from tool_utils.benchmark_options import add_timing_arguments

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

OPERATORS = ('GC', 'TBC-fold', 'TBC-grouped', 'TBC-auto')
COLORS = dict(
    zip(OPERATORS, ('tab:red', 'tab:blue', 'tab:green', 'tab:purple')))
PASSES = ('forward', 'forward_backward')
MEMORY_FORMATS = {
    'contiguous': torch.contiguous_format,
    'channels_last': torch.channels_last
}


def parse_shape(text: str) -> Tuple[int, int, int]:
    try:
        channels, height, width = (int(v) for v in text.split('x'))
    except ValueError:
        channels = 0
    if min(channels, height, width) < 1:
        raise argparse.ArgumentTypeError(
            'expected an input shape CxHxW of positive integers such as '
            f'2048x56x56, got {text!r}')
    return channels, height, width


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter,
        description=__doc__.split('\n')[0])
    parser.add_argument(
        '--shapes',
        nargs='+',
        type=parse_shape,
        default=[(2048, 56, 56), (256, 28, 28)],
        help='input shapes CxHxW (default: the paper\'s 2048x56x56 and '
        'a small 256x28x28)')
    parser.add_argument(
        '--blocks',
        nargs='+',
        type=int_at_least(1),
        default=[1, 2, 4, 8, 16, 32],
        help='block numbers B (default: 1 2 4 8 16 32)')
    parser.add_argument(
        '--base-filters',
        type=int_at_least(1),
        help='output filters at B = 1 (default: C / max(B), so that the '
        'largest B has as many output as input channels)')
    parser.add_argument(
        '--kernel-size', type=int_at_least(1), default=3, help='k of the k x k kernel')
    parser.add_argument(
        '--batch', type=int_at_least(1), default=1, help='batch size')
    parser.add_argument(
        '--passes',
        nargs='+',
        choices=PASSES,
        default=list(PASSES),
        help='what is timed')
    parser.add_argument(
        '--memory-formats',
        nargs='+',
        choices=list(MEMORY_FORMATS),
        default=list(MEMORY_FORMATS),
        help='memory formats of the inputs and weights')
    add_timing_arguments(parser, block_time=0.2, unit='case')
    parser.add_argument(
        '--out-dir',
        default=osp.join('work_dirs', 'benchmark_tbc'),
        help='where the tables and the plot are written')
    return parser.parse_args(argv)


def build_operator(name: str, channels: int, filters: int, blocks: int,
                   kernel_size: int) -> nn.Module:
    """GC with ``blocks`` groups or TBC with ``blocks`` blocks."""
    args = (channels, filters * blocks, kernel_size)
    kwargs = dict(padding=kernel_size // 2, bias=False)
    if name == 'GC':
        return nn.Conv2d(*args, groups=blocks, **kwargs)
    return TiedBlockConv2d(
        *args, blocks=blocks, impl=name.split('-')[1], **kwargs)


def make_task(module: nn.Module, x: torch.Tensor,
              pass_name: str) -> Callable[[], object]:
    """One forward, or forward + backward, call of ``module`` on ``x``."""
    if pass_name == 'forward':

        def forward():
            with torch.no_grad():
                return module(x)

        return forward
    inputs = [x.detach().requires_grad_(), *module.parameters()]
    grad = torch.ones_like(module(inputs[0]))

    def forward_backward():
        return torch.autograd.grad(module(inputs[0]), inputs, grad)

    return forward_backward


def run_case(args: argparse.Namespace, shape: Tuple[int, int, int],
             pass_name: str, memory_format: str) -> List[Dict]:
    """Time every operator at every B for one shape, pass and format."""
    channels, height, width = shape
    filters = args.base_filters or channels // max(args.blocks)
    fmt = MEMORY_FORMATS[memory_format]
    x = torch.randn(args.batch, channels, height, width, device=args.device)
    x = x.contiguous(memory_format=fmt)
    tasks, rows = {}, []
    for blocks in args.blocks:
        for name in OPERATORS:
            module = build_operator(name, channels, filters, blocks,
                                    args.kernel_size)
            module = module.to(args.device, memory_format=fmt)
            key = f'{name} B={blocks}'
            tasks[key] = make_task(module, x, pass_name)
            rows.append(
                dict(
                    shape=f'{channels}x{height}x{width}',
                    kernel_size=args.kernel_size,
                    batch=args.batch,
                    pass_name=pass_name,
                    memory_format=memory_format,
                    operator=name,
                    blocks=blocks,
                    out_channels=filters * blocks,
                    params=sum(p.numel() for p in module.parameters()),
                    macs=args.batch * height * width * filters * channels *
                    args.kernel_size**2,
                    impl=(module.resolve_impl(x)
                          if isinstance(module, TiedBlockConv2d) else ''),
                    key=key))
    measurements = benchmark(
        tasks,
        repeats=args.repeats,
        block_time=args.block_time,
        num_threads=args.threads,
        clock=args.clock)
    for row in rows:
        row.update(summarize(measurements[row.pop('key')]))
    for row in rows:
        first = next(r for r in rows if r['operator'] == row['operator']
                     and r['blocks'] == min(args.blocks))
        row['ratio_to_first_b'] = row['median'] / first['median']
    return rows


def format_table(rows: List[Dict]) -> str:
    """Per case, one line per B: median ms, IQR, ratio to the first B."""
    by_case: Dict[Tuple, Dict[Tuple[str, int], Dict]] = {}
    for r in rows:
        case = (r['shape'], r['pass_name'], r['memory_format'])
        by_case.setdefault(case, {})[r['operator'], r['blocks']] = r
    lines = []
    for (shape, pass_name, memory_format), case in by_case.items():
        lines.append(f'\n{shape}, {pass_name}, {memory_format} '
                     f'(median ms ± IQR, x time at the first B)')
        lines.append('B'.rjust(4) + ''.join(f'{name:>30}'
                                            for name in OPERATORS))
        for blocks in sorted({b for _, b in case}):
            cells = [
                f"{r['median'] * 1e3:9.2f} ±{r['iqr'] * 1e3:7.2f} "
                f"x{r['ratio_to_first_b']:5.2f}"
                for r in (case[name, blocks] for name in OPERATORS)
            ]
            lines.append(f'{blocks:>4}' + ''.join(f'{c:>30}' for c in cells))
    return '\n'.join(lines)


def plot(rows: List[Dict], path: str, machine: Dict[str, str]) -> None:
    """Figure 3 of Tied Block Convolution: time against B, one panel per shape/pass."""
    shapes = list(dict.fromkeys(r['shape'] for r in rows))
    passes = list(dict.fromkeys(r['pass_name'] for r in rows))
    fig, axes = plt.subplots(
        len(shapes),
        len(passes),
        figsize=(5.5 * len(passes), 4 * len(shapes)),
        squeeze=False)
    styles = {'contiguous': '-', 'channels_last': '--'}
    for i, shape in enumerate(shapes):
        for j, pass_name in enumerate(passes):
            ax = axes[i][j]
            for memory_format, style in styles.items():
                for name in OPERATORS:
                    case = sorted(
                        (r for r in rows
                         if (r['shape'], r['pass_name'], r['memory_format'],
                             r['operator']) == (shape, pass_name,
                                                memory_format, name)),
                        key=lambda r: r['blocks'])
                    if not case:
                        continue
                    ax.errorbar([r['blocks'] for r in case],
                                [r['median'] * 1e3 for r in case],
                                yerr=[r['iqr'] * 1e3 / 2 for r in case],
                                linestyle=style,
                                color=COLORS[name],
                                marker='o',
                                capsize=3,
                                label=f'{name} ({memory_format})')
            ax.set_xscale('log', base=2)
            ax.set_xticks(sorted({r['blocks'] for r in rows}))
            ax.get_xaxis().set_major_formatter(
                matplotlib.ticker.ScalarFormatter())
            ax.set_xlabel('block number B')
            ax.set_ylabel('median time per call (ms)')
            ax.set_title(f'{shape}, k={rows[0]["kernel_size"]}, '
                         f'{pass_name.replace("_", " + ")}')
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7)
    fig.suptitle(f'Fixed FLOPs: GC vs TBC on {machine["device"]} '
                 f'({machine.get("gpu", machine["processor"])}, '
                 f'{machine["threads"]} threads)')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    for blocks in args.blocks:
        for channels, _, _ in args.shapes:
            filters = args.base_filters or channels // max(args.blocks)
            if filters < 1 or channels % blocks:
                raise SystemExit(
                    f'benchmark_tbc: shape with C={channels} channels cannot '
                    f'be split into B={blocks} blocks with {filters} filters '
                    f'at B = 1')
    check_clock(args.clock, args.threads, args.device)
    torch.set_num_threads(args.threads)
    machine = describe_machine(args.device, args.threads)
    print(f'machine: {machine}')
    rows = []
    for shape in args.shapes:
        for pass_name in args.passes:
            for memory_format in args.memory_formats:
                print(f'timing {shape}, {pass_name}, {memory_format} ...',
                      flush=True)
                rows += run_case(args, shape, pass_name, memory_format)
    os.makedirs(args.out_dir, exist_ok=True)
    csv_path = osp.join(args.out_dir, 'tbc_timings.csv')
    with open(csv_path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    json_path = osp.join(args.out_dir, 'tbc_timings.json')
    with open(json_path, 'w') as f:
        json.dump(dict(machine=machine, args=vars(args), rows=rows), f,
                  indent=2)
    png_path = osp.join(args.out_dir, 'tbc_time_vs_blocks.png')
    plot(rows, png_path, machine)
    print(format_table(rows))
    print(f'\nwritten: {csv_path}, {json_path}, {png_path}')


if __name__ == '__main__':
    main()
