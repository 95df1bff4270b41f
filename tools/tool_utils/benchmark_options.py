"""The timing options of the benchmark tools, the same in every one."""
import argparse

import torch

from sharedbasis_mm.analysis.benchmark import CLOCKS

from .arguments import float_at_least, int_at_least


def add_timing_arguments(parser: argparse.ArgumentParser,
                         block_time: float,
                         unit: str = 'case') -> None:
    """Add the options of
    :func:`~sharedbasis_mm.analysis.benchmark.benchmark` to a tool's parser.

    They are ``--device``, ``--threads``, ``--clock``, ``--repeats`` and
    ``--block-time``, the same in every benchmark tool.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        block_time (float): The default of ``--block-time``, in seconds.
        unit (str): What is timed, for the help of ``--repeats``.
            Defaults to ``'case'``.
    """
    parser.add_argument(
        '--device',
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='cpu or cuda (default: cuda when available)')
    parser.add_argument(
        '--threads',
        type=int_at_least(1),
        default=torch.get_num_threads(),
        help='CPU threads torch uses (default: torch\'s default)')
    parser.add_argument(
        '--clock',
        choices=sorted(CLOCKS),
        default='wall',
        help='wall: elapsed time; cpu: CPU time of the one '
        'computing thread (CPU, --threads 1), robust on a shared machine')
    parser.add_argument(
        '--repeats',
        type=int_at_least(1),
        default=5, help=f'timed blocks per {unit}')
    parser.add_argument(
        '--block-time',
        type=float_at_least(0, inclusive=False),
        default=block_time,
        help='seconds per timed block (at least one call)')
