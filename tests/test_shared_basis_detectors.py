"""Shared-basis backbones inside mmdet's own detector configs (CPU)."""
import pytest
import torch
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.hub import get_config
from mmengine.optim import OptimWrapper
from mmengine.registry import MODELS, DefaultScope

import sharedbasis_mm  # noqa: F401

register_all_modules()

BACKBONE = dict(
    type='SharedBasisResNet',
    depth=50,
    basis_cfg=dict(share='conv1_conv2'),
    frozen_stages=1,
    init_cfg=None)


def detector_steps(config: str, backbone: dict, with_mask: bool) -> None:
    """One training step and one predict step of an mmdet detector."""
    cfg = get_config(config)
    cfg.model.backbone = backbone
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    torch.manual_seed(0)
    data = demo_mm_inputs(
        batch_size=2,
        image_shapes=[(3, 128, 160), (3, 96, 128)],
        num_items=[3, 2],
        num_classes=80,
        with_mask=with_mask)
    optim_wrapper = OptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.001))
    model.train()
    losses = model.train_step(data, optim_wrapper)
    assert all(torch.isfinite(v) for v in losses.values())
    assert 'loss_bbox' in losses or any('loss_bbox' in k for k in losses)
    model.eval()
    with torch.no_grad():
        results = model.val_step(data)
    assert len(results) == 2
    assert results[0].pred_instances.bboxes.shape[-1] == 4
    if with_mask:
        assert 'masks' in results[0].pred_instances


@pytest.mark.parametrize('config,with_mask', [
    ('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', False),
    ('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', True),
])
def test_two_stage_detectors_train_and_predict(config, with_mask):
    detector_steps(config, BACKBONE, with_mask)
