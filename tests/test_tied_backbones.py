"""TiedResNet, TiedResNeXt and TiedSEResNet (Tied Block Convolution, Figure 4, Table 1)."""
import functools
import glob
import os.path as osp

import mmdet
import pytest
import torch
import torch.nn as nn
from mmdet.registry import MODELS as MMDET_MODELS
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.analysis import get_model_complexity_info
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from mmpretrain.structures import DataSample
from torch.nn.modules.batchnorm import _BatchNorm

import sharedbasis_mm  # noqa: F401
from sharedbasis_mm.backbones import TiedResNet
from sharedbasis_mm.layers import TiedBlockConv2d
from reference_checks import assert_gradients

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MMDET_CONFIGS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs')

SLIM = dict(base_width=18, split_blocks=(1, 2, 2, 2))
# A TiedResNet-50 small enough to train on the CPU: stage widths 64..512,
# parts of 8..64 channels.
TINY = dict(type='TiedResNet', depth=50, base_channels=16, base_width=8)
TINY_CHANNELS = [64, 128, 256, 512]


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """The test machine's 2 cores are shared: one thread runs fastest."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def design_complexity(depth,
                      splits=4,
                      base_width=32,
                      split_blocks=(1, 2, 4, 8),
                      mixer='sum',
                      groups=1,
                      entry_blocks=2,
                      se_ratio=None,
                      se_blocks=1,
                      num_classes=1000):
    """Parameters and conv/fc multiply-adds at 224 x 224 of the ImageNet
    classifier of the design in ``tied_resnet.py``, counted by hand."""
    stage_blocks = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}[depth]
    params = 3 * 64 * 7 * 7 + 2 * 64
    macs = 3 * 64 * 7 * 7 * 112 * 112
    inplanes, size = 64, 56
    for i, num_blocks in enumerate(stage_blocks):
        w, out = base_width * 2**i, 256 * 2**i
        width = splits * w
        for b in range(num_blocks):
            out_size = size // 2 if b == 0 and i > 0 else size
            # entry TBC + norm
            params += inplanes * width // entry_blocks**2 + 2 * width
            macs += inplanes * width // entry_blocks * size**2
            # 3 x 3 parts + norms
            for blocks in split_blocks:
                params += 9 * w * w // groups // blocks**2 + 2 * w
                macs += 9 * w * w // groups // blocks * out_size**2
            # mixer + norm2
            mixer_in = w if mixer == 'sum' else width
            params += mixer_in * width + 2 * width
            macs += mixer_in * width * out_size**2
            # exit conv + norm3
            params += width * out + 2 * out
            macs += width * out * out_size**2
            if b == 0:  # projection shortcut
                params += inplanes * out + 2 * out
                macs += inplanes * out * out_size**2
            if se_ratio is not None:
                hidden = max(2, out // se_blocks // se_ratio)
                params += 2 * out * hidden // se_blocks + out // se_blocks \
                    + hidden
            inplanes, size = out, out_size
    params += inplanes * num_classes + num_classes
    macs += inplanes * num_classes
    return params, macs


def count_params(model):
    return sum(p.numel() for p in model.parameters())


CONFIG_DIR = osp.join(ROOT, 'configs', 'tied')
# config of each model of Table 1 and Table 6: the hand count of its design
DESIGNS = {
    'tiedresnet50': dict(depth=50),
    'tiedresnet50-s': dict(depth=50, **SLIM),
    'tiedresnet101': dict(depth=101),
    'tiedresnet101-s': dict(depth=101, **SLIM),
    'tiedresnext101-s': dict(depth=101, base_width=64, groups=8),
    'tiedsenet101': dict(depth=101, se_ratio=16),
    'tiedsenet101-s': dict(depth=101, se_ratio=16, **SLIM),
    'tiedresnet50-cat': dict(depth=50, mixer='cat'),
}
NOT_REPRODUCED = pytest.mark.xfail(
    strict=True,
    reason='Table 1 makes each 14x14 block of depth 101 about 100-120k '
    'parameters larger than any TiedBottleneck the paper describes (see '
    'docs/tied_block_convolution.md, gaps to Table 1)')


@functools.lru_cache()
def load_config(name):
    return Config.fromfile(osp.join(CONFIG_DIR, f'{name}_8xb32_in1k.py'))


def test_every_config_is_a_paper_model():
    names = [
        osp.basename(path)[:-len('_8xb32_in1k.py')]
        for path in glob.glob(osp.join(CONFIG_DIR, '*.py'))
    ]
    assert sorted(names) == sorted(DESIGNS)


@pytest.mark.parametrize('name', list(DESIGNS))
def test_config_builds_its_paper_model(name):
    """The config trains with the paper's schedule and builds the design."""
    cfg = load_config(name)
    assert cfg.paper_reference.source in ('Tied Block Convolution, Table 1',
                                          'Tied Block Convolution, Table 6')
    assert tuple(cfg.paper_reference.input_shape) == (3, 224, 224)
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.momentum,
            optimizer.weight_decay) == ('SGD', 0.1, 0.9, 1e-4)
    assert cfg.param_scheduler.milestones == [30, 60, 90]
    assert cfg.train_cfg.max_epochs == 100
    assert cfg.train_dataloader.batch_size * 8 == 256
    init_default_scope('mmpretrain')
    model = MMPRETRAIN_MODELS.build(cfg.model)
    assert isinstance(model.backbone, TiedResNet)
    params, _ = design_complexity(**DESIGNS[name])
    assert count_params(model) == params


@pytest.mark.parametrize('name', [
    'tiedresnet50', 'tiedresnet50-s',
    pytest.param('tiedresnet101', marks=NOT_REPRODUCED),
    pytest.param('tiedresnet101-s', marks=NOT_REPRODUCED), 'tiedresnext101-s',
    'tiedsenet101', 'tiedsenet101-s', 'tiedresnet50-cat'
])
def test_params_within_3_percent_of_paper(name):
    params, _ = design_complexity(**DESIGNS[name])
    assert abs(params / load_config(name).paper_reference.params - 1) < 0.03


@functools.lru_cache()
def measured_flops(name):
    """mmengine's FLOPs (multiply-adds) of a config's model at 224 x 224."""
    init_default_scope('mmpretrain')
    model = MMPRETRAIN_MODELS.build(load_config(name).model)
    model.eval()
    return get_model_complexity_info(
        model, input_shape=(3, 224, 224), show_table=False,
        show_arch=False)['flops']


@pytest.mark.parametrize('name', ['tiedresnet50', 'tiedresnet50-s'])
def test_flops_match_design(name):
    """Each TBC costs 1/B of the untied convolution; mmengine also counts
    the norm layers (about 1%)."""
    _, macs = design_complexity(**DESIGNS[name])
    assert 1 <= measured_flops(name) / macs < 1.015


@pytest.mark.parametrize('name', ['tiedresnet50', 'tiedresnet50-s'])
@pytest.mark.xfail(
    strict=True,
    reason='the paper gives 5-17% more FLOPs than the design for every '
    'model (see docs/tied_block_convolution.md)')
def test_flops_within_3_percent_of_paper(name):
    paper_flops = load_config(name).paper_reference.flops
    assert abs(measured_flops(name) / paper_flops - 1) < 0.03


def test_builds_in_mmdet_and_mmpretrain():
    for registry in (MMDET_MODELS, MMPRETRAIN_MODELS):
        model = registry.build(dict(TINY, out_indices=(0, 3)))
        assert isinstance(model, TiedResNet)
        outs = model(torch.rand(1, 3, 64, 64))
        assert [tuple(o.shape) for o in outs] == [(1, 64, 16, 16),
                                                  (1, 512, 2, 2)]


def test_image_classifier_trains():
    model = MMPRETRAIN_MODELS.build(
        dict(
            type='ImageClassifier',
            _scope_='mmpretrain',
            backbone=dict(TINY, out_indices=(3, ), norm_eval=False),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(
                type='LinearClsHead',
                num_classes=10,
                in_channels=512,
                loss=dict(type='CrossEntropyLoss'))))
    model.init_weights()
    samples = [DataSample().set_gt_label(label) for label in (3, 7)]
    images = torch.rand(2, 3, 64, 64)
    losses = model(images, samples, mode='loss')
    losses['loss'].backward()
    assert torch.isfinite(losses['loss'])
    # the residual branches start at zero (zero_init_residual): their last
    # norm is the first to learn; its gradient is float64 autograd's,
    # checked by finite differences
    assert_gradients(
        model, lambda m, x: m(x, samples, mode='loss')['loss'], [images],
        params=[model.backbone.layer1[0].norm3.weight])
    model.eval()
    with torch.no_grad():
        predictions = model(torch.rand(2, 3, 64, 64), samples, mode='predict')
    assert predictions[0].pred_score.shape == (10, )


def test_tied_bottleneck_structure():
    model = MMDET_MODELS.build(dict(type='TiedResNet', depth=50))
    block = model.layer3[1]  # stage 2: parts of 32 * 4 = 128 channels
    assert isinstance(block.conv1, TiedBlockConv2d)
    assert block.conv1.blocks == 2
    assert (block.conv1.in_channels, block.conv1.out_channels) == (1024, 512)
    assert [split[0].blocks for split in block.conv2.splits] == [1, 2, 4, 8]
    assert all(split[0].in_channels == 128 for split in block.conv2.splits)
    assert (block.conv2.mixer.in_channels,
            block.conv2.mixer.out_channels) == (128, 512)
    assert type(block.conv3) is nn.Conv2d
    assert (block.conv3.in_channels, block.conv3.out_channels) == (512, 1024)


@pytest.mark.parametrize('backbone', [
    dict(TINY),
    dict(TINY, mixer='cat'),
    dict(TINY, splits=2, split_blocks=(1, 4)),
    dict(TINY, style='caffe', with_cp=True),
    dict(TINY, type='TiedResNeXt', base_width=16, groups=2),
    dict(TINY, type='TiedSEResNet', se_blocks=4),
    dict(TINY, depth=101, dilations=(1, 1, 2, 2), strides=(1, 2, 1, 1)),
    dict(
        TINY,
        plugins=[
            dict(
                cfg=dict(type='TiedGCB', ratio=1 / 4, blocks=2),
                stages=(False, True, True, True),
                position='after_conv3'),
            dict(
                cfg=dict(type='TiedSE', blocks=2),
                position='after_conv2')
        ]),
])
def test_forward_backward(backbone):
    model = MMDET_MODELS.build(dict(backbone, norm_eval=False))
    model.init_weights()
    model.train()
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    outs = model(x)
    sizes = [16, 8, 4, 2] if 'dilations' not in backbone else [16, 8, 8, 8]
    assert [tuple(o.shape) for o in outs] == [
        (2, c, s, s) for c, s in zip(TINY_CHANNELS, sizes)
    ]
    sum(o.mean() for o in outs).backward()
    assert x.grad.abs().sum() > 0
    for name, p in model.named_parameters():
        assert p.grad is not None, name


def test_with_cp_same_output():
    torch.manual_seed(0)
    plain = MMDET_MODELS.build(TINY)
    checkpointed = MMDET_MODELS.build(dict(TINY, with_cp=True))
    checkpointed.load_state_dict(plain.state_dict())
    plain.eval()
    checkpointed.eval()
    x = torch.rand(1, 3, 64, 64)
    for a, b in zip(plain(x), checkpointed(x)):
        assert torch.allclose(a, b)


def test_plugins_named_and_placed_as_in_mmdet():
    model = MMDET_MODELS.build(
        dict(
            TINY,
            plugins=[
                dict(
                    cfg=dict(type='TiedGCB', ratio=1 / 4, blocks=2),
                    stages=(False, True, True, True),
                    position='after_conv3')
            ]))
    assert not hasattr(model.layer1[0], 'tied_gcb')
    gcb = model.layer2[0].tied_gcb
    assert gcb.in_channels == 128  # the block's output channels
    assert model.layer2[0].after_conv3_plugin_names == ['tied_gcb']


def test_frozen_stages_and_norm_eval():
    model = MMDET_MODELS.build(dict(TINY, frozen_stages=1, norm_eval=True))
    model.train()
    for module in (model.conv1, model.norm1, model.layer1):
        assert all(not p.requires_grad for p in module.parameters())
    assert all(p.requires_grad for p in model.layer2.parameters())
    assert all(not m.training for m in model.modules()
               if isinstance(m, _BatchNorm))
    assert not model.layer1.training and model.layer2.training


def test_zero_init_residual():
    model = MMDET_MODELS.build(TINY)
    model.init_weights()
    assert all(block.norm3.weight.abs().sum() == 0 for layer in
               (model.layer1, model.layer4) for block in layer)
    model = MMDET_MODELS.build(dict(TINY, zero_init_residual=False))
    model.init_weights()
    # mmdet's ResNet initialisation: every norm weight one
    assert all(torch.equal(m.weight, torch.ones_like(m.weight))
               for m in model.modules() if isinstance(m, _BatchNorm))


def test_drop_path_on_each_residual_branch():
    """drop_path_rate: in training, each TiedBottleneck's residual branch is
    dropped per sample with its rate (rising linearly over the 16 blocks
    from 0 to drop_path_rate, as in mmpretrain's ResNet) and kept ones are
    scaled by 1 / (1 - rate) (mmcv's DropPath), before the identity is
    added; in eval mode the branch is kept whole."""
    model = MMDET_MODELS.build(dict(TINY, drop_path_rate=0.5))
    blocks = model.residual_blocks()
    assert len(blocks) == 16
    assert type(blocks[0].drop_path) is nn.Identity
    assert [block.drop_path.drop_prob for block in blocks[1:]
            ] == pytest.approx([0.5 * i / 15 for i in range(1, 16)])
    block = model.layer4[0]  # strided, with a projection shortcut
    rate = block.drop_path.drop_prob
    x = torch.randn(16, 256, 4, 4, generator=torch.Generator().manual_seed(0))
    model.train()
    torch.manual_seed(0)
    out = block(x)
    torch.manual_seed(0)
    kept = (1 - rate + torch.rand(16, 1, 1, 1)).floor()
    assert 0 < kept.sum() < 16
    branch, shortcut = block.residual_branch(x), block.downsample(x)
    torch.testing.assert_close(
        out, torch.relu(branch * kept / (1 - rate) + shortcut))
    model.eval()
    branch, shortcut = block.residual_branch(x), block.downsample(x)
    torch.testing.assert_close(block(x), torch.relu(branch + shortcut))


@pytest.mark.parametrize('backbone, match', [
    (dict(TINY, base_width=18), r'split_blocks\[2\] \* groups'),
    (dict(TINY, type='TiedResNeXt', base_width=16, groups=8),
     r'split_blocks\[2\] \* groups = 4 \* 8'),
    (dict(TINY, split_blocks=(1, 2, 4)), r'split_blocks=\(1, 2, 4\)'),
    (dict(TINY, splits=1, split_blocks=(1, )), 'splits'),
    (dict(TINY, mixer='max'), "mixer='max'"),
    (dict(TINY, entry_blocks=3), 'entry_blocks=3'),
    (dict(TINY, dcn=dict(type='DCN'), stage_with_dcn=(True, ) * 4), 'dcn'),
])
def test_bad_configuration(backbone, match):
    with pytest.raises(ValueError, match=match):
        MMDET_MODELS.build(backbone)


def detector(config, backbone, neck_in_channels):
    """One of mmdet's own detector configs with ``backbone``, built with
    fewer proposals and RoIs, so that a step runs in seconds on a CPU."""
    register_all_modules()
    cfg = Config.fromfile(osp.join(MMDET_CONFIGS, config))
    cfg.model.backbone = dict(backbone, init_cfg=None)
    cfg.model.neck.in_channels = neck_in_channels
    train_cfg, test_cfg = cfg.model.train_cfg, cfg.model.test_cfg
    if 'rpn_proposal' in train_cfg:
        train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=64)
        test_cfg.rpn.update(nms_pre=200, max_per_img=64)
        stages = train_cfg.rcnn
        for stage in stages if isinstance(stages, list) else [stages]:
            stage.sampler.num = 32
        test_cfg.rcnn.max_per_img = 20
    else:
        test_cfg.update(nms_pre=200, max_per_img=20)
    model = MMDET_MODELS.build(cfg.model)
    model.init_weights()
    return model


def train_and_predict(model, with_mask):
    torch.manual_seed(0)
    packed = demo_mm_inputs(
        2, [[3, 128, 128], [3, 128, 96]],
        num_items=[3, 2],
        num_classes=80,
        with_mask=with_mask)
    model.train()
    losses = model(**model.data_preprocessor(packed, True), mode='loss')
    loss, _ = model.parse_losses(losses)
    loss.backward()
    assert torch.isfinite(loss)
    backbone_grads = [
        p.grad for p in model.backbone.parameters() if p.requires_grad
    ]
    assert all(g is not None for g in backbone_grads)
    assert sum(g.abs().sum() for g in backbone_grads) > 0
    model.eval()
    with torch.no_grad():
        results = model(
            **model.data_preprocessor(packed, False), mode='predict')
    assert len(results) == 2
    for result, size in zip(results, [(128, 128), (128, 96)]):
        instances = result.pred_instances
        assert instances.bboxes.shape[1] == 4
        assert len(instances.scores) == len(instances.labels)
        if with_mask:
            assert instances.masks.shape[1:] == size


@pytest.mark.parametrize('config, with_mask', [
    ('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', False),
    ('mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', True),
    ('retinanet/retinanet_r50_fpn_1x_coco.py', False),
    ('cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py', False),
])
def test_detector_with_tied_resnet(config, with_mask):
    # the detection configs' backbone settings: frozen stem and stage 1,
    # frozen BN statistics
    backbone = dict(TINY, frozen_stages=1, norm_eval=True)
    model = detector(config, backbone, TINY_CHANNELS)
    assert isinstance(model.backbone, TiedResNet)
    train_and_predict(model, with_mask)


def test_mmdet_resnet_with_tied_gcb():
    config = 'gcnet/mask-rcnn_r50-gcb-r4-c3-c5_fpn_1x_coco.py'
    backbone = Config.fromfile(osp.join(MMDET_CONFIGS, config)).model.backbone
    assert backbone.type == 'ResNet'
    backbone.plugins[0].cfg = dict(type='TiedGCB', ratio=1 / 4, blocks=2)
    backbone.base_channels = 16
    model = detector(config, backbone, TINY_CHANNELS)
    assert type(model.backbone).__name__ == 'ResNet'
    assert hasattr(model.backbone.layer3[0], 'tied_gcb')
    train_and_predict(model, with_mask=True)
