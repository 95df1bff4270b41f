"""tools/benchmark_backbones.py in each engine, on tiny inputs: the tables
hold every backbone and its ratios to the baselines deployed the same way
(no assertion on time)."""
import json

import pytest
import torch.nn as nn
from mmdet.models.backbones import ResNet

from sharedbasis_mm.backbones import TiedResNet
from sharedbasis_mm.layers import fuse_model
from test_benchmark_tools import FAST, read_csv
from tool_loading import load_tool

TINY = ['--input-size', '32', '--batch-sizes', '1', '2', *FAST]


@pytest.mark.parametrize('engine', ['torch', 'onnxruntime'])
def test_benchmark_backbones_in_each_engine_writes_ratios(tmp_path, engine):
    if engine == 'onnxruntime':
        pytest.importorskip('onnxruntime')
    load_tool('benchmark_backbones').main([
        '--engine', engine, '--models', 'TiedResNet50-S-fused',
        '--profile', '--out-dir', str(tmp_path), *TINY
    ])
    rows = {r['name']: r for r in read_csv(tmp_path / 'backbones.csv')}
    assert list(rows) == ['ResNet50', 'ResNet50-fused', 'TiedResNet50-S-fused']
    ratios = read_csv(tmp_path / 'ratios.csv')
    assert [(r['name'], r['baseline']) for r in ratios] == [
        ('ResNet50-fused', 'ResNet50'),
        ('TiedResNet50-S-fused', 'ResNet50'),
        ('TiedResNet50-S-fused', 'ResNet50-fused'),
    ]
    for ratio in ratios:
        row, base = rows[ratio['name']], rows[ratio['baseline']]
        for key in ('latency_b1_ms', 'latency_b2_ms', 'params', 'flops'):
            assert float(ratio[key]) == pytest.approx(
                float(row[key]) / float(base[key]), rel=1e-6)
    # Deployed, the tied filters are repeated once per block: 0.63x the
    # parameters of ResNet50 with its BN folded (0.50x trained)
    tied = TiedResNet(50, base_width=18, split_blocks=(1, 2, 2, 2),
                      out_indices=(3, ), deploy=True)
    resnet = fuse_model(ResNet(50, out_indices=(3, )))
    assert float(ratios[2]['params']) == pytest.approx(
        sum(p.numel() for p in tied.parameters()) /
        sum(p.numel() for p in resnet.parameters()))
    report = json.loads((tmp_path / 'backbones.json').read_text())
    assert report['machine']['engine'] == engine
    assert report['ratios'][2]['latency_b2_ms'] == pytest.approx(
        float(ratios[2]['latency_b2_ms']))
    onnx_files = sorted(p.name for p in (tmp_path / 'onnx').glob('*.onnx')
                        ) if engine == 'onnxruntime' else []
    assert onnx_files == (sorted(
        f'{name}_b{batch}.onnx' for name in rows
        for batch in (1, 2)) if engine == 'onnxruntime' else [])
    # the profile: every convolution of each model once, the shares of one
    # call summing to 1
    profile = read_csv(tmp_path / 'profile.csv')
    for name, model in (('ResNet50-fused', resnet),
                        ('TiedResNet50-S-fused', tied)):
        model_rows = [row for row in profile if row['name'] == name]
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        assert sum(int(row['calls']) for row in model_rows
                   if row['op'] in ('conv', 'Conv', 'FusedConv')) == len(convs)
        assert sum(float(row['share'])
                   for row in model_rows) == pytest.approx(1)
        # the 3 x 3 convolutions with 9 input channels per group of the
        # merged parts of the first stage: 3 blocks
        if name == 'TiedResNet50-S-fused':
            assert sum(int(row['calls']) for row in model_rows
                       if (row['kernel'], row['in_per_group'],
                           row['groups']) == ('3', '9', '6')) == 3
    # peak memory is that of torch's allocator: the torch engine only
    assert ('peak_memory_b2_mib' in rows['ResNet50']) == (engine == 'torch')


@pytest.mark.parametrize('option, message', [
    ('--compile', '--compile is an option of --engine torch'),
    ('--channels-last', '--channels-last is an option of --engine torch'),
])
def test_benchmark_backbones_refuses_torch_options_in_onnxruntime(
        tmp_path, option, message):
    with pytest.raises(SystemExit, match=message):
        load_tool('benchmark_backbones').main([
            '--engine', 'onnxruntime', option, '--models', 'ResNet50',
            '--out-dir', str(tmp_path), *TINY
        ])


def test_benchmark_backbones_refuses_onnxruntime_on_cuda_without_its_provider(
        tmp_path):
    onnxruntime = pytest.importorskip('onnxruntime')
    if 'CUDAExecutionProvider' in onnxruntime.get_available_providers():
        pytest.skip('onnxruntime-gpu is installed: it runs on cuda')
    with pytest.raises(SystemExit, match="cannot run on device='cuda'"):
        load_tool('benchmark_backbones').main([
            '--engine', 'onnxruntime', '--device', 'cuda', '--models',
            'ResNet50', '--out-dir', str(tmp_path), '--input-size', '32'
        ])
