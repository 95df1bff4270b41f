"""Time and memory of model calls, for the benchmark tools.

Every call is timed with :class:`torch.utils.benchmark.Timer`, which fixes
the number of threads while it measures and synchronises the accelerator
around each timed block, so the same code measures on the CPU and on a GPU.
"""
import math
import os
import platform
import time
from typing import Any, Callable, Dict, Optional, Union

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile
from torch.utils.benchmark import Measurement, Timer
from torch.utils.benchmark.utils.timer import timer as wall_clock

CLOCKS = {'wall': wall_clock, 'cpu': time.thread_time}


def benchmark(tasks: Dict[str, Callable[[], Any]],
              repeats: int = 5,
              block_time: float = 0.2,
              num_threads: int = 1,
              clock: str = 'wall') -> Dict[str, Measurement]:
    """Time each task in blocks interleaved over the tasks.

    Each task is first timed once to choose its block size: the number of
    calls that lasts about ``block_time`` seconds (at least one). The tasks
    are then timed ``repeats`` times in turn, one block each, so that a
    slow drift of the machine's load affects every task alike and the
    ratios between tasks stay fair. ``Timer.timeit`` precedes every block
    with untimed warm-up calls (at least two), which also re-warm the
    caches after the other tasks' blocks.

    Args:
        tasks (dict[str, callable]): Calls without arguments, by name.
        repeats (int): Timed blocks per task; the median and the
            interquartile range are taken over them. Defaults to 5.
        block_time (float): Seconds each timed block should last.
            Defaults to 0.2.
        num_threads (int): Threads torch uses while timing. Defaults to 1.
        clock (str): ``'wall'``: elapsed time, the accelerator synchronised
            (torch.utils.benchmark's timer). ``'cpu'``: CPU time of the
            calling thread, which is the thread that computes on the CPU
            with ``num_threads=1``; unlike elapsed time, it does not count
            the time other processes hold the core, so it suits a shared
            machine. Defaults to ``'wall'``.

    Returns:
        dict[str, Measurement]: One measurement per task, normalised to
        the time of one call.
    """
    for name, value in (('repeats', repeats), ('num_threads', num_threads)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f'benchmark: {name} must be a positive integer, '
                             f'got {name}={value!r}')
    if block_time <= 0:
        raise ValueError(f'benchmark: block_time must be positive, got '
                         f'block_time={block_time!r}')
    check_clock(clock, num_threads)
    timers = {
        name: Timer(
            'task()',
            globals=dict(task=task),
            timer=CLOCKS[clock],
            num_threads=num_threads,
            description=name)
        for name, task in tasks.items()
    }
    block_sizes = {
        name: max(1,
                  math.floor(block_time / max(timer.timeit(1).median, 1e-9)))
        for name, timer in timers.items()
    }
    blocks = {name: [] for name in timers}
    for _ in range(repeats):
        for name, timer in timers.items():
            blocks[name].append(timer.timeit(block_sizes[name]))
    return {
        name: Measurement.merge(measurements)[0]
        for name, measurements in blocks.items()
    }


def check_clock(clock: str,
                num_threads: int,
                device: Optional[Union[str, torch.device]] = None) -> None:
    """Raise a ValueError unless ``clock`` can time calls so run.

    The ``'cpu'`` clock times the calling thread alone: it needs
    ``num_threads=1`` and, if a device is given, the CPU.
    """
    if clock not in CLOCKS:
        raise ValueError(f'unknown clock={clock!r}; expected one of '
                         f'{sorted(CLOCKS)}')
    if clock == 'cpu' and num_threads != 1:
        raise ValueError(f"clock='cpu' times the calling thread alone and "
                         f'needs num_threads=1, got num_threads={num_threads}')
    if (clock == 'cpu' and device is not None
            and torch.device(device).type != 'cpu'):
        raise ValueError(f"clock='cpu' times CPU work and needs the CPU, got "
                         f'device={device}')


def summarize(measurement: Measurement) -> Dict[str, float]:
    """Median and interquartile range in seconds, and the timed blocks."""
    return dict(
        median=measurement.median,
        iqr=measurement.iqr,
        timed_blocks=len(measurement.times))


def peak_memory(task: Callable[[], Any], device: Union[str,
                                                       torch.device]) -> int:
    """Peak bytes that one call of ``task`` allocates on ``device``.

    Counts the tensors allocated through PyTorch's allocator during the
    call beyond those live before it (the weights and inputs), at the
    moment the most of them are live: on a GPU by the allocator's peak
    statistics, on the CPU by replaying the allocations and frees that
    :mod:`torch.profiler` records.
    """
    device = torch.device(device)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        task()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    if device.type != 'cpu':
        raise ValueError(f'peak_memory: device={device} is not supported; '
                         f'expected cpu or cuda')
    with profile(activities=[ProfilerActivity.CPU],
                 profile_memory=True) as prof:
        task()
    events = sorted(
        (event for event in prof.profiler.kineto_results.events()
         if event.name() == '[memory]'
         and event.device_type() == DeviceType.CPU),
        key=lambda event: event.start_ns())
    live = peak = 0
    for event in events:
        live += event.nbytes()
        peak = max(peak, live)
    return peak


def describe_machine(device: Union[str, torch.device],
                     num_threads: int) -> Dict[str, str]:
    """The processor or GPU, thread count and software the timings ran on."""
    device = torch.device(device)
    description = dict(
        device=str(device),
        processor=_processor_name(),
        cpu_count=str(os.cpu_count()),
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
        threads=str(num_threads),
        torch=torch.__version__,
        python=platform.python_version())
    if device.type == 'cuda':
        description['gpu'] = torch.cuda.get_device_name(device)
        description['cuda'] = str(torch.version.cuda)
    return description


def _processor_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
