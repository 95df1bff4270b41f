"""Two training iterations of a config's model, as mmengine's Runner takes
them: the model and its data preprocessor built from the config, the
config's own optimizer wrapper, ``model.train_step`` on a given batch."""
import math
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from sharedbasis_mm.analysis import build_model_from_config


def train_two_iterations(cfg: Config,
                         batch: dict) -> Tuple[nn.Module, List[Dict]]:
    """Train ``cfg.model`` two iterations on ``batch`` (a dict of
    ``inputs`` and ``data_samples``, the format of a dataloader's batch).

    Asserts that every loss is finite and that every trainable backbone
    parameter got a gradient and moved; returns the model and the logged
    losses of both iterations.
    """
    torch.manual_seed(0)
    model = build_model_from_config(cfg)
    model.init_weights()
    model.train()
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = {
        name: p.detach().clone()
        for name, p in model.backbone.named_parameters() if p.requires_grad
    }
    logs = [model.train_step(batch, optim_wrapper) for _ in range(2)]
    for log in logs:
        assert all(math.isfinite(float(torch.as_tensor(v).detach()))
                   for v in log.values()), log
    unmoved = [
        name for name, p in model.backbone.named_parameters()
        if name in before and torch.equal(p, before[name])
    ]
    assert not unmoved, f'backbone parameters not trained: {unmoved[:5]}'
    return model, logs


def few_proposals(model_cfg: dict) -> None:
    """Fewer proposals and sampled RoIs in a detector's train and test
    settings (in place), so that an iteration runs in seconds on a CPU."""
    train_cfg, test_cfg = model_cfg['train_cfg'], model_cfg['test_cfg']
    if 'rpn_proposal' in train_cfg:
        train_cfg['rpn_proposal'].update(nms_pre=200, max_per_img=64)
        test_cfg['rpn'].update(nms_pre=200, max_per_img=64)
        stages = train_cfg['rcnn']
        for stage in stages if isinstance(stages, list) else [stages]:
            stage['sampler']['num'] = 32


def detection_batch(num_classes: int, with_mask: bool) -> dict:
    """Two seeded small images (128 x 128 and 128 x 96) with 3 and 2
    instances, as a detection dataloader packs them."""
    from mmdet.testing import demo_mm_inputs
    torch.manual_seed(0)
    return demo_mm_inputs(
        2, [[3, 128, 128], [3, 128, 96]],
        num_items=[3, 2],
        num_classes=num_classes,
        with_mask=with_mask)
