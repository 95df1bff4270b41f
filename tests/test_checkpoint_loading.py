"""Checkpoints of mmengine's Runner load with torch.load's default
(``weights_only=True``) in mmpretrain's APIs and in our tools, without
TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD (mmdet's tools and APIs:
tests/test_detection_configs.py); bad checkpoint files are named in the
error."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.runner import Runner
from mmpretrain import ImageClassificationInferencer, get_model
from mmpretrain.structures import DataSample

from sharedbasis_mm.utils import load_checkpoint_file
from sharedbasis_mm.utils.checkpoint import (RUNNER_CHECKPOINT_GLOBALS,
                                             history_buffer_method)
from tool_loading import load_tool

CLASSIFIER_CONFIG = """
custom_imports = dict(imports=['sharedbasis_mm'], allow_failed_imports=False)
default_scope = 'mmpretrain'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='SharedBasisResNet', depth=18, base_channels=8,
                  basis_cfg=dict(shared_rank=4), out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=4, in_channels=64))
test_dataloader = dict(dataset=dict(type='CustomDataset', pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs')
]))
"""


def global_name(safe_global) -> str:
    """The name torch gives a global: ``module.name``, or the one it was
    registered under."""
    if isinstance(safe_global, tuple):
        return safe_global[1]
    return f'{safe_global.__module__}.{safe_global.__qualname__}'


@pytest.fixture(autouse=True)
def torch_default_loading(monkeypatch):
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)


def classifier_runner(cfg: Config, work_dir: str, max_iters: int,
                      **kwargs) -> Runner:
    """A Runner training the classifier of ``cfg`` on 4 random images in
    batches of 2, for ``max_iters`` iterations (``None``: one epoch),
    checkpointing every iteration (epoch)."""
    generator = torch.Generator().manual_seed(0)
    dataset = [
        dict(
            inputs=torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8,
                                 generator=generator),
            data_samples=DataSample().set_gt_label(i % 4)) for i in range(4)
    ]
    by_epoch = max_iters is None
    return Runner(
        model=cfg.model,
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=dataset,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'),
            batch_size=2,
            num_workers=0),
        train_cfg=dict(by_epoch=True, max_epochs=1)
        if by_epoch else dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        param_scheduler=dict(
            type='MultiStepLR', milestones=[1], by_epoch=by_epoch),
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook', interval=1, by_epoch=by_epoch)),
        default_scope='mmpretrain',
        **kwargs)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A tiny mmpretrain classifier trained by Runners: its config and the
    checkpoints of an epoch-based run (``True``, one epoch) and of an
    iteration-based one (``False``, 2 iterations)."""
    root = tmp_path_factory.mktemp('trained')
    config = root / 'classifier.py'
    config.write_text(CLASSIFIER_CONFIG)
    cfg = Config.fromfile(str(config))
    checkpoints = {}
    for by_epoch, max_iters, name in ((True, None, 'epoch_1.pth'),
                                      (False, 2, 'iter_2.pth')):
        work_dir = root / f'by_epoch_{by_epoch}'
        classifier_runner(
            cfg,
            str(work_dir),
            max_iters,
            experiment_name=f'checkpoint_loading_{by_epoch}').train()
        checkpoints[by_epoch] = str(work_dir / name)
    return str(config), checkpoints


def loads(path: str) -> bool:
    try:
        torch.load(path)
    except pickle.UnpicklingError as error:
        assert 'Weights only load failed' in str(error)
        return False
    return True


def test_registered_globals_are_exactly_those_of_runner_checkpoints(
        trained):
    """The Runner's checkpoints load with what importing sharedbasis_mm
    registers, and not without any one of the registered globals."""
    _, checkpoints = trained
    paths = list(checkpoints.values())
    registered = torch.serialization.get_safe_globals()
    try:
        torch.serialization.clear_safe_globals()
        needed = set()
        for path in paths:
            needed.update(
                torch.serialization.get_unsafe_globals_in_checkpoint(path))
        # the classes of the dtypes are no GLOBAL of the pickle: they are
        # the types of the dtypes it builds
        built = (np.dtypes.Float64DType, np.dtypes.Int64DType)
        assert needed == {
            global_name(g)
            for g in RUNNER_CHECKPOINT_GLOBALS if g not in built
        }
        for left_out in RUNNER_CHECKPOINT_GLOBALS:
            torch.serialization.clear_safe_globals()
            torch.serialization.add_safe_globals(
                [g for g in RUNNER_CHECKPOINT_GLOBALS if g is not left_out])
            assert not all(map(loads, paths)), global_name(left_out)
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(registered)
    assert all(map(loads, paths))
    # what the unrestricted unpickler reads
    for path in paths:
        loaded = load_checkpoint_file(path)
        unrestricted = torch.load(path, weights_only=False)
        assert loaded['meta']['seed'] == unrestricted['meta']['seed']
        assert isinstance(loaded['meta']['seed'], int)
        assert loaded['state_dict'].keys() == unrestricted['state_dict'].keys()
        assert all(torch.equal(v, unrestricted['state_dict'][k])
                   for k, v in loaded['state_dict'].items())


def test_getattr_is_allowed_for_history_buffer_methods_only():
    assert history_buffer_method(HistoryBuffer, 'mean') is HistoryBuffer.mean
    for obj, name in ((HistoryBuffer, '__init__'), (np.ndarray, 'min'),
                      (getattr, '__self__')):
        with pytest.raises(pickle.UnpicklingError,
                           match=f'got getattr.*{name!r}'):
            history_buffer_method(obj, name)


def test_runner_resumes_from_its_checkpoint(trained, tmp_path):
    config, checkpoints = trained
    runner = classifier_runner(
        Config.fromfile(config),
        str(tmp_path),
        max_iters=3,
        load_from=checkpoints[False],
        resume=True,
        experiment_name='checkpoint_loading_resumed')
    runner.train()
    assert runner.iter == 3
    assert torch.load(str(tmp_path / 'iter_3.pth'))['meta']['iter'] == 3


def test_mmpretrain_get_model_and_inferencer(trained):
    config, checkpoints = trained
    expected = torch.load(checkpoints[True])['state_dict']
    model = get_model(config, pretrained=checkpoints[True], device='cpu')
    inferencer = ImageClassificationInferencer(
        config, pretrained=checkpoints[True], device='cpu')
    for loaded in (model, inferencer.model):
        state_dict = loaded.state_dict()
        assert all(torch.equal(state_dict[k], v) for k, v in expected.items())
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3),
                                              dtype=np.uint8)
    result, = inferencer(image)
    assert len(result['pred_scores']) == 4


def test_our_tools(trained, tmp_path):
    config, checkpoints = trained
    checkpoint = checkpoints[True]
    backbone = str(tmp_path / 'backbone.pth')
    load_tool('convert_cls_checkpoint').main([checkpoint, backbone])
    converted = torch.load(backbone)['state_dict']
    original = torch.load(checkpoint)['state_dict']
    assert converted.keys() == {
        k[len('backbone.'):]
        for k in original if k.startswith('backbone.')
    }
    load_tool('fuse_model').main([
        config, checkpoint, '--out-dir',
        str(tmp_path / 'fused'), '--input-shape', '1', '3', '32', '32'
    ])
    # the deploy config with the fused checkpoint computes the trained
    # classifier's scores (its BatchNorm statistics are trained ones)
    fused_dir = tmp_path / 'fused'
    deployed = get_model(str(fused_dir / 'classifier_deploy.py'),
                         pretrained=str(fused_dir / 'classifier_fused.pth'),
                         device='cpu')
    trained_model = get_model(config, pretrained=checkpoint, device='cpu')
    assert deployed.backbone.deploy and not trained_model.backbone.deploy
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(
            deployed.eval()(x, mode='tensor'),
            trained_model.eval()(x, mode='tensor'), rtol=1e-4, atol=1e-5)
    summary = load_tool('analyze_coefficients').main(
        [config, checkpoint, '--out-dir',
         str(tmp_path / 'coefficients')])
    assert len(summary) == 4
