import csv
import json

import numpy as np
import pytest
import torch
from mmpretrain.models.backbones import MobileNetV2

from sharedbasis_mm.analysis.benchmark import (benchmark, check_clock,
                                               describe_machine, peak_memory,
                                               summarize)
from tool_loading import load_tool

FAST = [
    '--repeats', '2', '--block-time', '0.001', '--threads', '1', '--clock',
    'cpu'
]


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_benchmark_times_every_task_in_interleaved_blocks():
    calls = []
    tasks = {name: (lambda name=name: calls.append(name))
             for name in ('a', 'b')}
    measurements = benchmark(tasks, repeats=3, block_time=1e-9)
    assert set(measurements) == {'a', 'b'}
    for measurement in measurements.values():
        summary = summarize(measurement)
        # the median and interquartile range of the blocks' times per call
        times = np.asarray(measurement.times)
        assert len(times) == 3 and times.min() > 0
        assert summary == dict(
            median=pytest.approx(np.median(times)),
            iqr=pytest.approx(np.subtract(*np.quantile(times, [0.75, 0.25]))),
            timed_blocks=3)
    # Blocks of one call, each after Timer.timeit's two warm-up calls, in
    # turn.
    assert calls[-18:] == (['a'] * 3 + ['b'] * 3) * 3
    with pytest.raises(ValueError, match='repeats must be a positive '
                       'integer, got repeats=0'):
        benchmark(tasks, repeats=0)
    cpu = benchmark(tasks, repeats=2, block_time=1e-9, clock='cpu')
    assert summarize(cpu['a'])['timed_blocks'] == 2


@pytest.mark.parametrize('clock,threads,device,match', [
    ('tsc', 1, None, r"unknown clock='tsc'; expected one of \['cpu', "
     r"'wall'\]"),
    ('cpu', 2, None, 'needs num_threads=1, got num_threads=2'),
    ('cpu', 1, 'cuda', 'needs the CPU, got device=cuda'),
])
def test_bad_clock(clock, threads, device, match):
    with pytest.raises(ValueError, match=match):
        check_clock(clock, threads, device)


def test_peak_memory_counts_the_live_tensors_at_the_peak():
    size = 4 * 2**20

    def one_at_a_time():
        for _ in range(3):
            torch.ones(size // 4)

    def two_at_once():
        first = torch.ones(size // 4)
        second = torch.ones(size // 4)
        return first, second

    assert size <= peak_memory(one_at_a_time, 'cpu') < 2 * size
    assert 2 * size <= peak_memory(two_at_once, 'cpu') < 3 * size
    with pytest.raises(ValueError, match='device=meta is not supported'):
        peak_memory(one_at_a_time, 'meta')
    assert describe_machine('cpu', 1)['threads'] == '1'


def test_benchmark_tbc_writes_table_and_plot(tmp_path, capsys):
    load_tool('benchmark_tbc').main([
        '--shapes', '16x6x6', '--blocks', '1', '2', '4', '--out-dir',
        str(tmp_path), *FAST
    ])
    rows = read_csv(tmp_path / 'tbc_timings.csv')
    # 2 passes x 2 memory formats x 3 block numbers x 4 operators.
    assert len(rows) == 48
    for row in rows:
        assert int(row['out_channels']) == 4 * int(row['blocks'])
        # Fixed FLOPs: every convolution costs 6 * 6 * 4 * 16 * 3 * 3 MACs.
        assert int(row['macs']) == 6 * 6 * 4 * 16 * 9
        if row['blocks'] == '1':
            assert float(row['ratio_to_first_b']) == 1
    tbc = {(r['blocks'], r['memory_format']): r for r in rows
           if r['operator'] == 'TBC-fold'}
    gc = {(r['blocks'], r['memory_format']): r for r in rows
          if r['operator'] == 'GC'}
    # TBC has B times fewer parameters than GC at the same B.
    assert int(gc[('4', 'contiguous')]['params']) == 4 * int(
        tbc[('4', 'contiguous')]['params'])
    assert tbc[('2', 'channels_last')]['impl'] == 'fold'
    assert {r['impl'] for r in rows if r['operator'] == 'TBC-auto'
            and r['blocks'] != '1'} <= {'fold', 'grouped'}
    with open(tmp_path / 'tbc_time_vs_blocks.png', 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert 'machine' in json.loads((tmp_path / 'tbc_timings.json').read_text())
    assert '16x6x6, forward, contiguous' in capsys.readouterr().out


def test_benchmark_backbones_writes_ratios(tmp_path):
    load_tool('benchmark_backbones').main([
        '--models', 'MobileNetV2-Shared-fused', '--input-size', '32',
        '--batch-sizes', '1', '2', '--no-flops', '--out-dir',
        str(tmp_path), *FAST
    ])
    rows = {r['name']: r for r in read_csv(tmp_path / 'backbones.csv')}
    # The baselines of the named backbone are measured beside it.
    assert list(rows) == [
        'MobileNetV2', 'MobileNetV2-fused', 'MobileNetV2-Shared-fused'
    ]
    # Fused, the shared model is the baseline's graph.
    assert rows['MobileNetV2-Shared-fused']['params'] == rows[
        'MobileNetV2-fused']['params']
    # the same graph allocates the same tensors, and at least MobileNetV2's
    # largest output at batch 2 (96 x 16 x 16 floats each)
    largest = []
    with torch.no_grad():
        model = MobileNetV2()
        model.eval()
        for module in model.modules():
            if not list(module.children()):
                module.register_forward_hook(lambda m, i, o: largest.append(
                    o.numel() * o.element_size()))
        model(torch.randn(2, 3, 32, 32))
    assert max(largest) == 2 * 96 * 16 * 16 * 4
    assert rows['MobileNetV2-Shared-fused']['peak_memory_b2_mib'] == rows[
        'MobileNetV2-fused']['peak_memory_b2_mib']
    for row in rows.values():
        assert float(row['peak_memory_b2_mib']) >= max(largest) / 2**20
        assert float(row['throughput_img_s']) == pytest.approx(
            2 / float(row['latency_b2_ms']) * 1e3)
    ratios = read_csv(tmp_path / 'ratios.csv')
    assert [(r['name'], r['baseline']) for r in ratios] == [
        ('MobileNetV2-fused', 'MobileNetV2'),
        ('MobileNetV2-Shared-fused', 'MobileNetV2'),
        ('MobileNetV2-Shared-fused', 'MobileNetV2-fused'),
    ]
    assert float(ratios[-1]['params']) == 1


def test_benchmark_hook_trains_with_and_without_loss_orth(tmp_path):
    """The hook's benchmark times the detector's train_step with the hook on
    and off (a step whose losses hold loss_orth with the hook off, or lack
    it with the hook on, stops it) on ResNet50-Shared's 4 bases."""
    out = tmp_path / 'hook.json'
    results = load_tool('benchmark_hook').main([
        '--iters', '1', '--warmup', '0', '--image-size', '64',
        '--batch-size', '1', '--out',
        str(out)
    ])
    assert (results['model'], results['num_bases']) == ('FasterRCNN', 4)
    with open(out) as f:
        assert json.load(f) == json.loads(json.dumps(results))
