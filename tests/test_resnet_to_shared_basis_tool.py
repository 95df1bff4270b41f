"""tools/model_converters/resnet_to_shared_basis.py on generated plain
checkpoints of the three layouts (mmpretrain, mmdet, torchvision)."""
import json
import os.path as osp
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS
from torchvision.models import resnet18

import sharedbasis_mm  # noqa: F401 (registers the backbones)
from tool_loading import load_tool


@pytest.fixture(scope='module', autouse=True)
def mmpretrain_scope():
    """Build in mmpretrain's scope, whatever another test of this process
    left as the default scope."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


tool = load_tool('resnet_to_shared_basis')

TINY = dict(stem_channels=8, base_channels=8)
SHARED = dict(
    type='SharedBasisResNet',
    depth=18,
    **TINY,
    basis_cfg=dict(shared_rank=4, unique_rank=1))
HEAD = dict(type='LinearClsHead', num_classes=5, in_channels=64)


def write_config(tmp_path, backbone: dict) -> str:
    path = osp.join(tmp_path, 'shared.py')
    with open(path, 'w') as file:
        file.write(
            "custom_imports = dict(imports=['sharedbasis_mm'])\n"
            f"model = dict(type='ImageClassifier', backbone={backbone!r}, "
            f"neck=dict(type='GlobalAveragePooling'), head={HEAD!r})\n")
    return path


def classifier(backbone: dict) -> torch.nn.Module:
    return MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=backbone,
            neck=dict(type='GlobalAveragePooling'),
            head=HEAD)).eval()


@pytest.fixture(scope='module')
def plain_state():
    torch.manual_seed(0)
    return classifier(dict(type='ResNet', depth=18, **TINY)).state_dict()


def torchvision_layout(state: dict) -> OrderedDict:
    """torchvision's keys: no backbone. prefix, fc for head.fc, and no
    num_batches_tracked (as its released ImageNet checkpoints)."""
    return OrderedDict(
        (key.replace('backbone.', '').replace('head.fc.', 'fc.'), value)
        for key, value in state.items()
        if not key.endswith('num_batches_tracked'))


def test_torchvision_layout_is_torchvisions(plain_state):
    assert set(torchvision_layout(plain_state)) == {
        key
        for key in resnet18().state_dict()
        if not key.endswith('num_batches_tracked')
    }


@pytest.mark.parametrize('layout', ['mmpretrain', 'mmpretrain-unwrapped',
                                    'torchvision', 'mmdet'])
def test_layouts_convert_and_load_strictly(tmp_path, plain_state, layout,
                                           capsys):
    config = write_config(str(tmp_path), SHARED)
    state = plain_state
    if layout == 'torchvision':
        state = torchvision_layout(plain_state)
    elif layout == 'mmdet':
        state = OrderedDict((key, value) for key, value in state.items()
                            if key.startswith('backbone.'))
        state['neck.lateral_convs.0.conv.weight'] = torch.zeros(4, 8, 1, 1)
    checkpoint = (state if layout == 'mmpretrain-unwrapped' else
                  dict(state_dict=state, meta=dict()))
    src = osp.join(tmp_path, 'plain.pth')
    dst = osp.join(tmp_path, 'out', 'shared.pth')
    torch.save(checkpoint, src)
    backbone = layout == 'mmdet'
    report = tool.main([src, dst, '--config', config, '--max-iter', '3'] +
                       (['--backbone'] if backbone else []))
    assert report['layout'] == layout.split('-')[0]
    model = classifier(SHARED)
    converted = torch.load(dst)['state_dict']
    (model.backbone if backbone else model).load_state_dict(
        converted, strict=True)
    prefix = '' if backbone else 'backbone.'
    # copied: the stem and the first block of a group
    for key in ('conv1.weight', 'layer2.0.conv2.weight'):
        assert torch.equal(converted[prefix + key],
                           plain_state['backbone.' + key])
    if layout == 'torchvision':
        assert torch.equal(converted['head.fc.weight'],
                           plain_state['head.fc.weight'])
    with open(osp.join(tmp_path, 'out', 'shared.json')) as file:
        written = json.load(file)
    # 4 groups x 1 sharing block x 2 convolutions
    assert [c['name'] for c in written['convs']] == [
        f'{prefix}layer{i}.1.conv{j}' for i in range(1, 5) for j in (1, 2)
    ]
    printed = capsys.readouterr().out
    first = written['convs'][0]
    assert (f'{first["name"]}: relative error {first["relative_error"]:.4f}'
            f', energy kept {first["energy"]:.4f}') in printed
    assert first['energy'] == pytest.approx(1 - first['relative_error']**2)


def test_wrong_depth_is_refused_naming_the_key(tmp_path):
    config = write_config(str(tmp_path), SHARED)
    src = osp.join(tmp_path, 'r34.pth')
    torch.save(
        classifier(dict(type='ResNet', depth=34, **TINY)).state_dict(), src)
    with pytest.raises(SystemExit,
                       match=r"r34\.pth is not a plain ResNet of depth 18 .*"
                       r"its key 'backbone\.layer1\.2\.conv1\.weight' is "
                       r'not in the plain model'):
        tool.main([src, osp.join(tmp_path, 'x.pth'), '--config', config])


def test_config_sharing_nothing_is_refused(tmp_path, plain_state):
    config = write_config(str(tmp_path), dict(type='ResNet', depth=18,
                                              **TINY))
    src = osp.join(tmp_path, 'plain.pth')
    torch.save(plain_state, src)
    with pytest.raises(SystemExit, match='shares no filter basis'):
        tool.main([src, osp.join(tmp_path, 'x.pth'), '--config', config])


def test_calibration_keeps_the_eval_function(tmp_path, plain_state):
    import mmcv
    config = write_config(str(tmp_path), SHARED)
    src = osp.join(tmp_path, 'plain.pth')
    torch.save(plain_state, src)
    images = osp.join(tmp_path, 'images')
    rng = np.random.default_rng(0)
    for i in range(3):
        mmcv.imwrite(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8),
                     osp.join(images, f'{i}.png'))
    outputs = {}
    for calibrate in (False, True):
        dst = osp.join(tmp_path, f'shared{calibrate}.pth')
        tool.main([src, dst, '--config', config, '--max-iter', '3'] +
                  (['--calibrate', images, '--calibrate-size', '32']
                   if calibrate else []))
        model = classifier(SHARED)
        model.load_state_dict(torch.load(dst)['state_dict'], strict=True)
        outputs[calibrate] = model
    inputs = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        plain, calibrated = (outputs[c](inputs, mode='tensor')
                             for c in (False, True))
    assert ((plain - calibrated).norm() / plain.norm()).item() < 1e-5
    norm = outputs[True].backbone.layer1[1].conv1.norm
    identity = outputs[False].backbone.layer1[1].conv1.norm
    assert torch.equal(identity.running_mean, torch.zeros(5))
    assert not torch.allclose(norm.running_mean, torch.zeros(5))
