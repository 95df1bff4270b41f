"""``tools/demo.py`` (``make demo``) end to end, shortened: a few images and
one epoch, run as a subprocess from a clean work dir."""
import json
import math
import os.path as osp
import platform
import re
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from sharedbasis_mm.analysis import build_model_from_config, count_parameters
from sharedbasis_mm.layers import find_shared_bases, orthogonality_error
from tool_loading import load_tool

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = {
    'r18-s8u1': 'configs/demo/faster-rcnn_r18-s8u1_fpn_synthetic.py',
    'r18': 'configs/demo/faster-rcnn_r18_fpn_synthetic.py',
}
OCC_KEY = re.compile(r'occ/bbox_mAP_([0-9.]+)-([0-9.]+)')


def run_demo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'demo.py'), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900)


def cpu_model() -> str:
    """The CPU's model name as /proc/cpuinfo (else platform) gives it."""
    if osp.isfile('/proc/cpuinfo'):
        with open('/proc/cpuinfo') as f:
            names = re.findall(r'^model name\s*: (.*)$', f.read(), re.M)
        if names:
            return names[0].strip()
    return platform.processor() or platform.machine()


def coco_stats(work_dir, name: str) -> list:
    """pycocotools' AP, AP50, AP75, ... of the detections a demo run
    wrote, at mmdet's CocoMetric's maxDets."""
    coco = COCO(str(work_dir / 'data' / 'annotations' / 'instances_val.json'))
    detections = coco.loadRes(str(work_dir / name / 'results.bbox.json'))
    evaluation = COCOeval(coco, detections, 'bbox')
    evaluation.params.maxDets = [100, 300, 1000]
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    return list(evaluation.stats)


def table_row(report: str, title: str) -> list:
    """The cells after the title of a row of the report's tables."""
    match = re.search(rf'^\| {re.escape(title)} \|(.*)\|$', report, re.M)
    assert match, f'no row {title!r} in the report'
    return [cell.strip() for cell in match[1].split('|')]


def test_demo_reports_the_pair_side_by_side(tmp_path):
    work_dir = tmp_path / 'demo'
    result = run_demo('--work-dir', str(work_dir), '--train', '16', '--val',
                      '8', '--epochs', '1')
    assert result.returncode == 0, result.stderr[-3000:]

    # the data set it generated, once for both runs
    with open(work_dir / 'data' / 'annotations' / 'instances_val.json') as f:
        assert len(json.load(f)['images']) == 8

    # progress: a line as each run starts, and the evaluation's bar after
    # each training and in each test (8 images, one batch)
    assert re.search(r'\[1/2\] r18-s8u1: training shared-basis ResNet-18',
                     result.stdout)
    assert re.search(r'\[2/2\] r18: training ResNet-18', result.stdout)
    assert len(re.findall(r'\] 1/1, [0-9.]+ task/s', result.stdout)) == 4

    report = (work_dir / 'report.md').read_text()
    assert report in result.stdout
    assert f'report: {work_dir / "report.md"}' in result.stdout
    assert '16 training / 8 validation synthetic images' in report
    # the CPU the figures belong to, and no load average
    cpu = cpu_model()
    assert f'cores of {cpu}; the whole demo took' in report
    assert (f'A seeded run reproduces its losses and AP on the same CPU '
            f'model only ({cpu} here)') in report
    assert 'load average' not in report
    assert table_row(report, '') == [
        'shared-basis ResNet-18 S8U1 (`r18-s8u1`)', 'ResNet-18 (`r18`)'
    ]
    assert table_row(report, 'config') == [f'`{c}`' for c in CONFIGS.values()]

    # the parameters are those of the two configs' models
    models = {
        name: build_model_from_config(Config.fromfile(osp.join(ROOT, config)))
        for name, config in CONFIGS.items()
    }
    detector = [int(c.replace(',', ''))
                for c in table_row(report, 'detector parameters')]
    backbone = [int(c.replace(',', ''))
                for c in table_row(report, 'backbone parameters')]
    assert detector == [count_parameters(m) for m in models.values()]
    assert backbone == [count_parameters(m.backbone) for m in models.values()]
    assert detector[0] < detector[1]

    # AP, AP50, AP75: pycocotools' on the detections each run wrote
    columns = zip(*(table_row(report, title)
                    for title in ('bbox AP', 'bbox AP50', 'bbox AP75')))
    for name, cells in zip(CONFIGS, columns):
        assert [float(c) for c in cells] == pytest.approx(
            coco_stats(work_dir, name)[:3], abs=5e-4)
    results = json.loads((work_dir / 'results.json').read_text())
    assert (results['train_images'], results['val_images'],
            results['data_seed'], results['cpu']) == (16, 8, 0, cpu)
    assert not any('load_average' in m for m in results['models'])
    assert [m['name'] for m in results['models']] == list(CONFIGS)
    # the times measured, in minutes
    assert table_row(report, 'training time (min)') == [
        f"{m['train_time'] / 60:.1f}" for m in results['models']]
    assert table_row(report, 'evaluation time (s)') == [
        f"{m['test_time']:.0f}" for m in results['models']]

    # the orthogonality error: that of the trained shared bases, none for
    # the baseline
    orth = table_row(report, 'orthogonality error of the shared bases at '
                     'the end, sum of ‖WᵀW − I‖² (eq. 7)')
    model = models['r18-s8u1']
    # the demo's own checkpoint (mmengine's, which needs weights_only=False)
    checkpoint = torch.load(
        work_dir / 'r18-s8u1' / 'epoch_1.pth', weights_only=False)
    model.load_state_dict(checkpoint['state_dict'])
    bases = find_shared_bases(model)
    with torch.no_grad():
        expected = sum(float(orthogonality_error(b, 'sum'))
                       for b in bases.values())
    value, count = re.fullmatch(r'([0-9.e+-]+) \(([0-9]+) bases\)',
                                orth[0]).groups()
    assert int(count) == len(bases) == 4
    assert float(value) == pytest.approx(expected, rel=1e-3)
    assert orth[1] == '- (no shared bases)'

    # AP per occlusion bin: one column per model, from each run's results
    occlusion = [
        json.loads((work_dir / name / 'results.occlusion.json').read_text())
        for name in CONFIGS
    ]
    bins = re.findall(r'^\| ([0-9.]+-[0-9.]+) \| ([0-9]+) \|(.*)\|$',
                      report, re.M)
    assert len(bins) == 6
    for label, images, cells in bins:
        aps = [cell.strip() for cell in cells.split('|')]
        assert len(aps) == 2
        for ap, metrics in zip(aps, occlusion):
            value = metrics[f'occ/bbox_mAP_{label}']
            assert ap == ('nan' if math.isnan(value) else f'{value:.3f}')
    assert '## What this can and cannot show' in report

    # the plot: a line per model, drawn from the plotted data
    plot = work_dir / 'ap_vs_occlusion'
    assert f'Plot: {plot}.png' in report
    data = json.loads(plot.with_suffix('.json').read_text())
    assert list(data['lines']) == [
        'shared-basis ResNet-18 S8U1', 'ResNet-18'
    ]
    for line, metrics in zip(data['lines'].values(), occlusion):
        points = sorted(((float(m[1]) + float(m[2])) / 2, value)
                        for key, value in metrics.items()
                        if (m := OCC_KEY.fullmatch(key)))
        assert len(points) == 6
        assert sum(line['mAP'], []) == pytest.approx(
            sum(map(list, points), []), nan_ok=True)
    # matplotlib names each text it draws in the svg: the legend of each of
    # the two panels holds both models
    svg = plot.with_suffix('.svg').read_text()
    for label in data['lines']:
        assert svg.count(f'<!-- {label} -->') == 2
    assert plot.with_suffix('.png').stat().st_size > 10000


@pytest.mark.parametrize('args,message', [
    (['--backbones', 'r18', 'r50'], '--backbones: unknown r50; expected '
     'names among r18-s8u1, r18, tiedr50'),
    (['--backbones', 'r18', 'r18'], '--backbones: each name once'),
    (['--epochs', '0'], "--epochs: expected an integer >= 1, got '0'"),
    (['--seed', '-1'], "--seed: expected an integer >= 0, got '-1'"),
])
def test_demo_rejects_bad_arguments_before_any_work(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        load_tool('demo').parse_args(args)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_demo_configs_differ_only_in_the_backbone():
    shared, plain = (Config.fromfile(osp.join(ROOT, c)).to_dict()
                     for c in CONFIGS.values())
    assert shared['model'].pop('backbone')['type'] == 'SharedBasisResNet'
    assert plain['model'].pop('backbone')['type'] == 'ResNet'
    # the regularization of the shared bases has nothing to act on
    assert [h['type'] for h in shared.pop('custom_hooks')] == [
        'OrthogonalityLossHook'
    ]
    assert plain.pop('custom_hooks') == []
    assert shared == plain


def test_seed_sets_the_training_seed_and_its_own_work_dir():
    demo = load_tool('demo')
    config = osp.join(ROOT, CONFIGS['r18'])
    args = demo.parse_args(['--seed', '3', '--epochs', '2'])
    assert args.work_dir == osp.join('work_dirs', 'demo-seed3')
    assert args.backbones == ['r18-s8u1', 'r18']
    cfg = demo.demo_config(config, 'w', 'd', args)
    assert cfg.randomness.seed == 3
    assert cfg.train_cfg.max_epochs == cfg.train_cfg.val_interval == 2
    assert cfg.train_dataloader.dataset.data_root == 'd'
    assert cfg.test_evaluator.outfile_prefix == osp.join('w', 'results')
    # without --seed: the config's seed, the default work dir
    args = demo.parse_args([])
    assert args.work_dir == osp.join('work_dirs', 'demo')
    assert demo.demo_config(config, 'w', 'd', args).randomness.seed == \
        Config.fromfile(config).randomness.seed == 0


def write_demo_results(work_dir, seed, aps, epochs=7, train_images=1200):
    """A results.json of tools/demo.py: the pair with the given bbox AP."""
    models = [
        dict(name=name, seed=seed, epochs=epochs, iterations=epochs * 150,
             metrics={'coco/bbox_mAP': ap})
        for name, ap in zip(CONFIGS, aps)
    ]
    work_dir.mkdir()
    (work_dir / 'results.json').write_text(json.dumps(dict(
        train_images=train_images, val_images=200, data_seed=0,
        models=models)))
    return str(work_dir)


def test_demo_seeds_tabulates_ap_per_seed_with_mean_and_range(
        tmp_path, capsys, monkeypatch):
    aps = {0: (0.20, 0.22), 1: (0.25, 0.20), 2: (0.30, 0.27)}
    dirs = [write_demo_results(tmp_path / f'seed{seed}', seed, pair)
            for seed, pair in aps.items()]
    out = tmp_path / 'spread.md'
    monkeypatch.setattr(sys, 'argv',
                        ['demo_seeds.py', *dirs, '--out', str(out)])
    load_tool('demo_seeds').main()
    table = capsys.readouterr().out
    assert table == out.read_text()
    assert table_row(table, 'seed') == [
        '`r18-s8u1` AP', '`r18` AP', '`r18-s8u1` - `r18`'
    ]
    assert table_row(table, '0') == ['0.200', '0.220', '-0.020']
    assert table_row(table, '1') == ['0.250', '0.200', '+0.050']
    # means (0.75 / 3, 0.69 / 3, 0.06 / 3) and ranges (max - min)
    assert table_row(table, 'mean') == ['0.250', '0.230', '0.020']
    assert table_row(table, 'range (max - min)') == ['0.100', '0.070',
                                                     '0.070']
    assert '3 training seeds, 7 epochs (1050 steps) each' in table


@pytest.mark.parametrize('change,match', [
    (dict(epochs=6), 'expected runs of the same demo'),
    (dict(train_images=600), 'expected runs of the same demo'),
    (dict(seed=0), 'both ran seed 0'),
])
def test_demo_seeds_refuses_runs_of_another_demo(tmp_path, change, match):
    demo_seeds = load_tool('demo_seeds')
    first = write_demo_results(tmp_path / 'a', 0, (0.2, 0.2))
    other = dict(dict(seed=1, aps=(0.2, 0.2)), **change)
    second = write_demo_results(tmp_path / 'b', other.pop('seed'),
                                other.pop('aps'), **other)
    with pytest.raises(ValueError, match=match):
        demo_seeds.load_runs([first, second])


def test_demo_seeds_names_a_missing_results_file(tmp_path, monkeypatch):
    first = write_demo_results(tmp_path / 'a', 0, (0.2, 0.2))
    monkeypatch.setattr(sys, 'argv',
                        ['demo_seeds.py', first, str(tmp_path / 'b')])
    with pytest.raises(SystemExit, match=r"b/results\.json"):
        load_tool('demo_seeds').main()


def test_demo_seeds_checks_out_before_reading(tmp_path, monkeypatch):
    first = write_demo_results(tmp_path / 'a', 0, (0.2, 0.2))
    second = write_demo_results(tmp_path / 'b', 1, (0.2, 0.2))
    (tmp_path / 'file').write_text('')
    for out, match in [(tmp_path, 'is a folder'),
                       (tmp_path / 'file' / 'spread.md', '--out')]:
        monkeypatch.setattr(sys, 'argv', [
            'demo_seeds.py', first, second, '--out', str(out)])
        with pytest.raises(SystemExit, match=match):
            load_tool('demo_seeds').main()
    # a new folder is made
    out = tmp_path / 'new' / 'spread.md'
    monkeypatch.setattr(sys, 'argv',
                        ['demo_seeds.py', first, second, '--out', str(out)])
    load_tool('demo_seeds').main()
    assert '| mean |' in out.read_text()
