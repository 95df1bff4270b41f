"""Every config trains as its mmpretrain or mmdet reference does.

- Classification configs: every norm trains after ``.train()`` (mmpretrain's
  ResNet and MobileNetV2 default to ``norm_eval=False``);
  ``zero_init_residual`` as in mmpretrain's baseline configs, leaving the
  last norm of every residual block at zero after ``init_weights``.
- Detection configs: ``frozen_stages`` and ``norm_eval`` as in the mmdet
  baseline config beside them, which are mmdet's own model settings.
- ``_NxbM_`` configs train at batch M, and ``auto_scale_lr`` states the
  total batch N x M for which their lr is given.
- The smallest shared-basis classification config trains 40 iterations on
  generated 32 x 32 images through an mmengine Runner with finite losses,
  with and without the orthogonality regularization.
"""
import copy
import functools
import inspect
import math
import os
import os.path as osp
import re
from glob import glob

import numpy as np
import pytest
import torch
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck
from mmengine.config import Config
from mmengine.dataset import BaseDataset
from mmengine.hooks import Hook
from mmengine.registry import DATASETS, HOOKS, MODELS, DefaultScope
from mmengine.runner import Runner
from mmpretrain.models.backbones import ResNet as MMPretrainResNet
from mmpretrain.models.backbones.resnet import \
    BasicBlock as MMPretrainBasicBlock
from mmpretrain.models.backbones.resnet import \
    Bottleneck as MMPretrainBottleneck
from torch.nn.modules.batchnorm import _BatchNorm

import sharedbasis_mm  # noqa: F401

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = osp.join(ROOT, 'configs')
CLASSIFICATION_FOLDERS = ('shared_basis', 'orthogonality', 'tied',
                          'baselines', 'tied_se', 'tied_resnest')
# detection configs on mmdet's own ResNeSt and Cityscapes configs, whose
# settings (SyncBN and norm_eval=False; an 8-epoch Cityscapes schedule) are
# those configs' and are checked against them in tests/test_tied_resnest.py
# and tests/test_cityscapes_configs.py
MMDET_CONFIG_FAMILIES = ('tied_resnest', 'cityscapes')
# mmpretrain's backbones (and ours on them) that read their drop-path rates
# from a tensor while they are built: not on the meta device
BUILT_FROM_TENSORS = ('ResNet', 'SEResNet', 'SEResNetTiedSE', 'EfficientNet',
                      'EfficientNetTiedSE')
NORMS = (_BatchNorm, torch.nn.GroupNorm, torch.nn.LayerNorm)
SMALLEST = osp.join(CONFIGS, 'shared_basis',
                    'resnet32-s16u1-double_1xb128_cifar10.py')


def find_configs(*folders):
    return sorted(path for folder in folders for path in glob(
        osp.join(CONFIGS, folder, '**', '*.py'), recursive=True)
                  if '_base_' not in path.split(os.sep))


CLASSIFICATION_CONFIGS = find_configs(*CLASSIFICATION_FOLDERS)
DETECTION_CONFIGS = [
    c for c in find_configs('detection')
    if c.split(os.sep)[-2] not in MMDET_CONFIG_FAMILIES
]
ALL_CONFIGS = find_configs('.')


def config_id(path):
    return osp.relpath(path, CONFIGS)


pytestmark = pytest.mark.usefixtures('metafiles_read_once')


@functools.lru_cache(maxsize=None)
def _parse(path):
    return Config.fromfile(path)


def load_config(path):
    return copy.deepcopy(_parse(path))


def build(cfg, scope, device='cpu'):
    with DefaultScope.overwrite_default_scope(scope), torch.device(device):
        return MODELS.build(cfg)


def test_config_lists_are_complete():
    assert len(CLASSIFICATION_CONFIGS) >= 28
    assert len(DETECTION_CONFIGS) >= 40
    for path in CLASSIFICATION_CONFIGS:
        assert load_config(path).default_scope == 'mmpretrain', path


# --------------------------------------------------------------------------
# classification: norms train, zero_init_residual


@pytest.mark.parametrize('config', CLASSIFICATION_CONFIGS, ids=config_id)
def test_classification_config_trains_every_norm(config):
    """Built on the meta device (no weights needed to see the modes),
    except mmpretrain's ResNets and EfficientNets, which build their
    drop-path rates from a tensor."""
    cfg = load_config(config)
    device = ('cpu' if cfg.model.backbone.type in BUILT_FROM_TENSORS else
              'meta')
    model = build(cfg.model, 'mmpretrain', device)
    model.train()
    norms = [m for m in model.modules() if isinstance(m, NORMS)]
    assert norms
    frozen = [name for name, m in model.named_modules()
              if isinstance(m, NORMS) and not m.training]
    assert not frozen, f'norms in eval mode after .train(): {frozen[:5]}'
    assert all(p.requires_grad for p in model.parameters())


def residual_blocks(model):
    return [
        m for m in model.modules()
        if isinstance(m, (BasicBlock, Bottleneck, MMPretrainBasicBlock,
                          MMPretrainBottleneck))
    ]


def last_norm(block):
    return block.norm3 if hasattr(block, 'norm3') else block.norm2


MMPRETRAIN_ZERO_INIT = inspect.signature(
    MMPretrainResNet).parameters['zero_init_residual'].default


@pytest.mark.parametrize(
    'config', [
        c for c in CLASSIFICATION_CONFIGS
        if 'mobilenet' not in c and 'densenet' not in c and
        'efficientnet' not in c  # no such argument
    ],
    ids=config_id)
def test_classification_config_zero_init_residual(config):
    """As mmpretrain's ResNet baselines (zero_init_residual=True by
    default): the last norm of every residual block (norm2 of a BasicBlock,
    shared-basis ones included, after its second convolution; norm3 of a
    Bottleneck) is zero after init_weights, the others are not."""
    cfg = load_config(config)
    backbone = build(cfg.model.backbone, 'mmpretrain')
    assert backbone.zero_init_residual is MMPRETRAIN_ZERO_INIT is True
    backbone.init_weights()
    blocks = residual_blocks(backbone)
    assert blocks
    zeroed = {id(last_norm(block)) for block in blocks}
    for block in blocks:
        norm = last_norm(block)
        assert torch.count_nonzero(norm.weight) == 0
        assert torch.count_nonzero(norm.bias) == 0
    others = [
        m for m in backbone.modules()
        if isinstance(m, NORMS) and id(m) not in zeroed
    ]
    # the others as mmpretrain's ResNet initialises its norms: weight one,
    # bias zero
    assert others and all(
        torch.equal(m.weight, torch.ones_like(m.weight))
        and torch.count_nonzero(m.bias) == 0 for m in others)


# --------------------------------------------------------------------------
# detection: mmdet's settings, as the baseline beside


def baseline_beside(config):
    """The mmdet ResNet config of the same detector, depth and schedule in
    the same folder: faster-rcnn_tiedresnet50-s_fpn_8xb2-2x_coco.py ->
    faster-rcnn_r50_fpn_8xb2-2x_coco.py."""
    folder, name = osp.split(config)
    detector, backbone, rest = name.split('_', 2)
    depth = re.search(r'\d+', backbone)[0]
    rest = rest.split('_', 1)[1] if not rest.startswith('fpn') else rest
    return osp.join(folder, f'{detector}_r{depth}_{rest}')


@pytest.mark.parametrize('config', DETECTION_CONFIGS, ids=config_id)
def test_detection_config_keeps_mmdet_training_settings(config):
    baseline = baseline_beside(config)
    # the same detector, data and schedule: the configs differ in the
    # backbone, its orthogonality regularization and the paper's figures
    ours, theirs = (load_config(c).to_dict() for c in (config, baseline))
    for cfg in (ours, theirs):
        cfg['model'].pop('backbone')
        cfg.pop('paper_reference', None)
        cfg['custom_hooks'] = [
            h for h in cfg.get('custom_hooks', [])
            if h['type'] != 'OrthogonalityLossHook'
        ]
    assert ours == theirs, baseline
    reference = load_config(baseline).model.backbone
    assert reference.type == 'ResNet'
    backbone = load_config(config).model.backbone
    for key in ('frozen_stages', 'norm_eval', 'norm_cfg', 'style'):
        assert backbone.get(key) == reference.get(key), key
    assert (backbone.frozen_stages, backbone.norm_eval) == (1, True)


# --------------------------------------------------------------------------
# batch sizes


def named_batch(config):
    match = re.search(r'_(\d+)xb(\d+)[-_]', osp.basename(config))
    return (int(match[1]), int(match[2])) if match else None


@pytest.mark.parametrize(
    'config', [c for c in ALL_CONFIGS if named_batch(c)], ids=config_id)
def test_config_trains_at_the_batch_of_its_name(config):
    gpus, batch = named_batch(config)
    cfg = load_config(config)
    assert cfg.train_dataloader.batch_size == batch
    # the lr is given for the total batch of the name
    assert cfg.auto_scale_lr.base_batch_size == gpus * batch


# --------------------------------------------------------------------------
# the smallest shared-basis config trains


@DATASETS.register_module()
class GeneratedCifar(BaseDataset):
    """``num_samples`` seeded 32 x 32 noisy images whose label is their
    colour (one of ``num_classes``), in the format of mmpretrain's CIFAR
    datasets (``img``, ``gt_label``), through the config's pipeline."""

    def __init__(self, num_samples=64, num_classes=10, **kwargs):
        self.num_samples = num_samples
        self.num_classes = num_classes
        super().__init__(**kwargs)

    def load_data_list(self):
        rng = np.random.default_rng(0)
        colours = rng.integers(40, 216, (self.num_classes, 3))
        data = []
        for index in range(self.num_samples):
            label = index % self.num_classes
            noise = rng.integers(-40, 40, (32, 32, 3))
            img = (colours[label] + noise).astype(np.uint8)
            data.append(dict(img=img, gt_label=label))
        return data


@HOOKS.register_module()
class RecordLossesHook(Hook):
    """Keeps the losses of every training iteration."""

    def __init__(self):
        self.losses = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses.append({k: v.item() for k, v in outputs.items()})


def smallest_config_runner(work_dir, orthogonality):
    cfg = load_config(SMALLEST)
    cfg.work_dir = str(work_dir)
    pipeline = cfg.train_dataloader.dataset.pipeline
    cfg.train_dataloader.update(
        batch_size=4, num_workers=0, persistent_workers=False)
    cfg.train_dataloader['dataset'] = dict(
        type='GeneratedCifar', pipeline=pipeline)
    cfg.train_cfg = dict(by_epoch=False, max_iters=40)
    cfg.param_scheduler = []
    cfg.optim_wrapper.optimizer.lr = 0.01
    for key in ('val_dataloader', 'val_evaluator', 'val_cfg',
                'test_dataloader', 'test_evaluator', 'test_cfg'):
        cfg[key] = None
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10)
    hooks = [h for h in cfg.custom_hooks
             if h.type == 'OrthogonalityLossHook']
    assert len(hooks) == 1
    cfg.custom_hooks = (hooks if orthogonality else []) + [
        dict(type='RecordLossesHook')
    ]
    cfg.randomness = dict(seed=0)
    cfg.log_level = 'WARNING'
    return Runner.from_cfg(cfg)


@pytest.mark.parametrize('orthogonality', [True, False],
                         ids=['orthoreg', 'no-orthoreg'])
def test_smallest_shared_basis_config_trains(orthogonality, tmp_path):
    runner = smallest_config_runner(tmp_path, orthogonality)
    runner.train()
    recorder, = [h for h in runner.hooks if isinstance(h, RecordLossesHook)]
    assert len(recorder.losses) == 40
    keys = {'loss', 'loss_orth'} if orthogonality else {'loss'}
    for losses in recorder.losses:
        assert keys <= set(losses), losses
        assert all(math.isfinite(v) for v in losses.values()), losses
    assert ('loss_orth' in recorder.losses[0]) is orthogonality
    # it learns: the mean loss of the last 10 iterations is below the first
    first = np.mean([l['loss'] for l in recorder.losses[:10]])
    last = np.mean([l['loss'] for l in recorder.losses[-10:]])
    assert last < first
