"""TiedSE and TiedGCB (Tied Block Convolution, Figure 5, Tables 3 and 4)."""
import os.path as osp

import mmdet
import pytest
import torch
import torch.nn as nn
from mmcv.cnn import ContextBlock
from mmdet.models.layers import SELayer
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.config import Config
from mmpretrain.models.utils import SELayer as MMPretrainSELayer
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

import sharedbasis_mm  # noqa: F401
from sharedbasis_mm.attention import TiedGCB, TiedSE

GCB_R4_CONFIG = osp.join(
    osp.dirname(mmdet.__file__), '.mim', 'configs', 'gcnet',
    'mask-rcnn_r50-gcb-r4-c3-c5_fpn_1x_coco.py')


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """The test machine's 2 cores are shared: one thread runs fastest."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def randomize(module):
    torch.manual_seed(0)
    for p in module.parameters():
        nn.init.normal_(p, std=0.2)
    return module


def test_tied_se_b1_is_se():
    tied = randomize(TiedSE(64, ratio=16))
    se = SELayer(64, ratio=16)
    se.conv1.conv.weight.data = tied.squeeze.weight[..., None, None]
    se.conv1.conv.bias.data = tied.squeeze.bias
    se.conv2.conv.weight.data = tied.excite.weight[..., None, None]
    se.conv2.conv.bias.data = tied.excite.bias
    x = torch.randn(2, 64, 5, 7)
    assert torch.allclose(tied(x), se(x), atol=1e-6)


def test_tied_se_shares_one_se_over_the_blocks():
    """TiedSE with B blocks is one SE (hidden max(2, C/B/16)) applied to each
    block of C/B channels."""
    tied = randomize(TiedSE(256, ratio=16, blocks=4))
    se = TiedSE(64, ratio=16)
    se.load_state_dict(tied.state_dict())
    x = torch.randn(2, 256, 4, 4)
    expected = torch.cat([se(part) for part in x.chunk(4, dim=1)], dim=1)
    assert torch.allclose(tied(x), expected, atol=1e-6)
    assert tied.squeeze.weight.shape == (4, 64)
    assert TiedSE(256, blocks=8).squeeze.weight.shape == (2, 32)


def plugin_params(backbone, plugin_type):
    return sum(
        p.numel() for m in backbone.modules() if isinstance(m, plugin_type)
        for p in m.parameters())


def test_se_params_in_seresnet50_table_3():
    """SE, and TiedSE at B = 2, 4, 8, in SEResNet-50: 2.53M, 0.64M, 0.16M,
    0.04M (Table 3). TiedSE sits where SENet puts its SE: after the last
    norm of each bottleneck."""
    seresnet = MMPRETRAIN_MODELS.build(
        dict(type='SEResNet', depth=50, _scope_='mmpretrain'))
    se_params = plugin_params(seresnet, MMPretrainSELayer)
    assert round(se_params / 1e6, 2) == 2.53
    counts = {}
    for blocks in (1, 2, 4, 8):
        resnet = MMDET_MODELS.build(
            dict(
                type='ResNet',
                depth=50,
                _scope_='mmdet',
                plugins=[
                    dict(
                        cfg=dict(type='TiedSE', ratio=16, blocks=blocks),
                        position='after_conv3')
                ]))
        counts[blocks] = plugin_params(resnet, TiedSE)
    assert counts[1] == se_params
    assert [round(counts[b] / 1e6, 2) for b in (2, 4, 8)] == [0.64, 0.16, 0.04]


@pytest.mark.parametrize('pooling_type, fusion_types', [
    ('att', ('channel_add', )),
    ('att', ('channel_add', 'channel_mul')),
    ('avg', ('channel_mul', )),
])
def test_tied_gcb_b1_is_context_block(pooling_type, fusion_types):
    tied = randomize(TiedGCB(64, 1 / 4, 1, pooling_type, fusion_types))
    gcb = ContextBlock(64, 1 / 4, pooling_type, fusion_types)
    gcb.load_state_dict(
        {k.replace('.conv.', '.'): v
         for k, v in tied.state_dict().items()})
    x = torch.randn(2, 64, 6, 5)
    assert torch.allclose(tied(x), gcb(x), atol=1e-5)


def test_tied_gcb_starts_as_identity():
    gcb = TiedGCB(64, 1 / 4, blocks=4, fusion_types=('channel_add', ))
    x = torch.randn(2, 64, 6, 5)
    assert torch.equal(gcb(x), x)


def gcb_params_in_mask_rcnn_r50(blocks):
    """Parameters of the attention modules of mmdet's Mask R-CNN R50 with
    GCB r4 in stages c3-c5 (GCNet's config), as TiedGCB with ``blocks``."""
    backbone = Config.fromfile(GCB_R4_CONFIG).model.backbone
    backbone.update(init_cfg=None, _scope_='mmdet')
    backbone.plugins[0].cfg = dict(type='TiedGCB', ratio=1 / 4, blocks=blocks)
    return plugin_params(MMDET_MODELS.build(backbone), TiedGCB)


def test_gcb_params_in_mask_rcnn_table_4():
    """GCB: 10M; TiedGCB B = 2: 2.5M, 25% (Table 4)."""
    gcb = gcb_params_in_mask_rcnn_r50(1)
    backbone = Config.fromfile(GCB_R4_CONFIG).model.backbone
    backbone.update(init_cfg=None, _scope_='mmdet')
    assert gcb == plugin_params(MMDET_MODELS.build(backbone), ContextBlock)
    assert abs(gcb / 10e6 - 1) < 0.03
    tied = gcb_params_in_mask_rcnn_r50(2)
    assert abs(tied / 2.5e6 - 1) < 0.03
    assert abs(tied / gcb - 0.25) < 0.01


@pytest.mark.xfail(
    strict=True,
    reason='Table 4 gives 1.3M (13%) at B = 4, twice the 1/16 that TBC '
    'with B = 4 gives the transform (and that the text states)')
def test_gcb_params_in_mask_rcnn_table_4_b4():
    ratio = gcb_params_in_mask_rcnn_r50(4) / gcb_params_in_mask_rcnn_r50(1)
    assert abs(ratio - 0.13) < 0.01


def test_tied_gcb_param_ratio_b4():
    """At B = 4 the transform holds 1/16 of its parameters, the attention
    pooling and LayerNorm keep theirs."""
    gcb, tied = TiedGCB(512, 1 / 4), TiedGCB(512, 1 / 4, blocks=4)
    untied = 512 + 1 + 2 * 128  # conv_mask and LayerNorm
    transform = 2 * 512 * 128 + 128 + 512
    assert sum(p.numel() for p in gcb.parameters()) == untied + transform
    assert sum(p.numel() for p in tied.parameters()) == \
        untied + 2 * 128 * 128 // 4 + 128 // 4 + 512 // 4


@pytest.mark.parametrize('plugin', [
    dict(type='TiedGCB', ratio=1 / 16, blocks=2),
    dict(type='TiedSE', ratio=16, blocks=8),
])
@pytest.mark.parametrize('backbone', ['ResNet', 'TiedResNet'])
def test_plugin_in_resnet(plugin, backbone):
    part_width = dict(base_width=8) if backbone == 'TiedResNet' else {}
    model = MMDET_MODELS.build(
        dict(
            type=backbone,
            depth=50,
            base_channels=16,
            norm_eval=False,
            _scope_='mmdet',
            plugins=[
                dict(
                    cfg=plugin,
                    stages=(False, True, True, True),
                    position='after_conv3')
            ],
            **part_width))
    plugins = [
        m for m in model.modules() if type(m).__name__ == plugin['type']
    ]
    assert len(plugins) == 4 + 6 + 3
    model.train()
    outs = model(torch.rand(2, 3, 64, 64))
    assert outs[-1].shape == (2, 512, 2, 2)
    outs[-1].mean().backward()
    assert all(p.grad is not None for m in plugins for p in m.parameters())


@pytest.mark.parametrize('build, match', [
    (lambda: TiedSE(60, blocks=8), 'in_channels=60 must be divisible by '
     'blocks=8'),
    (lambda: TiedSE(64, blocks=0), 'blocks=0'),
    (lambda: TiedGCB(64, 1 / 4, blocks=3), 'in_channels=64 must be '
     'divisible by blocks=3'),
    (lambda: TiedGCB(64, 1 / 16, blocks=8), r'int\(in_channels \* ratio\)=4 '
     'must be divisible by blocks=8'),
])
def test_bad_configuration(build, match):
    with pytest.raises(ValueError, match=match):
        build()
