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
