"""Where a model's time goes: one call profiled in torch (``torch.profiler``)
or onnxruntime (its session profiling), the convolutions grouped by shape,
for ``tools/benchmark_backbones.py --profile``."""
import collections
import json
import os
from typing import Any, Callable, Dict, List, Sequence

from torch.profiler import ProfilerActivity, profile

from .deployment import onnx_session

CONV_OPS = ('Conv', 'FusedConv', 'QLinearConv')


def _conv_key(input_shape: Sequence[int],
              weight_shape: Sequence[int]) -> Dict[str, int]:
    """The kernel size and the channels per group of a convolution with
    these input ``(N, C, H, W)`` and weight ``(O, C / groups, k, k)``
    shapes."""
    groups = max(1, input_shape[1] // weight_shape[1])
    return dict(
        kernel=weight_shape[-1],
        in_per_group=weight_shape[1],
        out_per_group=weight_shape[0] // groups,
        groups=groups)


def _rows(times: Dict[tuple, List[float]], total: float) -> List[Dict]:
    """One row per op (and convolution shape), longest first: calls, time
    and share of the model's time."""
    rows = [
        dict(op=op, **dict(key), calls=calls, time_ms=time * 1e3,
             share=time / total)
        for (op, key), (calls, time) in times.items()
    ]
    return sorted(rows, key=lambda row: -row['time_ms'])


def profile_torch(call: Callable[[], Any]) -> List[Dict]:
    """Profile one call of a torch model on the CPU (``torch.profiler``).

    Returns one row per convolution shape (``op='conv'``: kernel, input and
    output channels per group, groups; the time of ``aten::convolution``
    with what it calls) and one row, ``op='other'``, for the rest.
    """
    with profile(activities=[ProfilerActivity.CPU],
                 record_shapes=True) as prof:
        call()
    events = prof.key_averages(group_by_input_shape=True)
    total = sum(event.self_cpu_time_total for event in events) / 1e6
    times: Dict[tuple, List[float]] = collections.defaultdict(
        lambda: [0, 0.])
    for event in events:
        if event.key == 'aten::convolution':
            x_shape, w_shape = event.input_shapes[:2]
            key = ('conv', tuple(_conv_key(x_shape, w_shape).items()))
            times[key][0] += event.count
            times[key][1] += event.cpu_time_total / 1e6
    conv = sum(time for _, time in times.values())
    times[('other', ())] = [0, total - conv]
    return _rows(times, total)


def profile_onnxruntime(path: str, feed: Dict[str, Any], device: str,
                        threads: int) -> List[Dict]:
    """Profile one run of an ONNX model in onnxruntime (session profiling,
    after a warm-up run).

    Returns one row per convolution shape (``op`` the node's operator,
    ``Conv`` or ``FusedConv``, the shapes as onnxruntime runs them, e.g.
    channels padded to its blocked layout) and one row per other operator
    (``ReorderInput``, ``Concat``, ...).
    """
    session = onnx_session(path, device, threads, profile=True)
    session.run(None, feed)
    session.run(None, feed)
    trace = session.end_profiling()
    with open(trace) as f:
        events = json.load(f)
    os.remove(trace)
    runs = [e for e in events if e.get('name') == 'model_run']
    last = runs[-1]
    start, end = last['ts'], last['ts'] + last['dur']
    times: Dict[tuple, List[float]] = collections.defaultdict(
        lambda: [0, 0.])
    for event in events:
        if (event.get('cat') != 'Node'
                or not event['name'].endswith('_kernel_time')
                or not start <= event['ts'] <= end):
            continue
        op = event['args']['op_name']
        key: tuple = ()
        if op in CONV_OPS:
            shapes = [
                next(iter(shape.values()))
                for shape in event['args']['input_type_shape']
            ]
            key = tuple(_conv_key(shapes[0], shapes[1]).items())
        times[(op, key)][0] += 1
        times[(op, key)][1] += event['dur'] / 1e6
    total = sum(time for _, time in times.values())
    return _rows(times, total)
