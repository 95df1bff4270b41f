"""Parameter and FLOP counts of models built from configs."""
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ContextBlock
from mmdet.models.layers import SELayer as MMDetSELayer
from mmengine.analysis import get_model_complexity_info
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope
from mmpretrain.models.utils import SELayer

from ..attention import TiedGCB, TiedSE

# what ``paper_reference.part`` may count: the whole model or its backbone
PARTS = ('model', 'backbone')
# the attention modules whose parameters ``paper_reference.attention_params``
# counts (Tied Block Convolution, Tables 3 and 4)
ATTENTION_MODULES = (SELayer, MMDetSELayer, TiedSE, ContextBlock, TiedGCB)


def count_parameters(model: nn.Module) -> int:
    """Parameters of a model, each shared Parameter counted once."""
    return sum(p.numel() for p in model.parameters())


def count_attention_parameters(model: nn.Module) -> int:
    """Parameters of the attention modules (``ATTENTION_MODULES``) of a
    model."""
    return sum(
        count_parameters(m) for m in model.modules()
        if isinstance(m, ATTENTION_MODULES))


def count_flops(model: nn.Module, input_shape: Tuple[int, ...]) -> int:
    """Multiply-adds of one forward pass on one ``input_shape`` image.

    mmengine's analysis counts a fused multiply-add as one flop, the
    convention of both papers' tables.
    """
    model.eval()
    with torch.no_grad():
        info = get_model_complexity_info(
            model, input_shape=input_shape, show_table=False,
            show_arch=False)
    return int(info['flops'])


def build_model_from_config(cfg: Config) -> nn.Module:
    """Build ``cfg.model`` in the config's default scope (CPU), as mmengine's
    Runner does: with the config's top-level ``data_preprocessor``
    (mmpretrain's configs put the normalization there) unless the model has
    its own.

    The scope is set for the build only; the current default scope is left
    as it was.
    """
    model = cfg.model.copy()
    if cfg.get('data_preprocessor') is not None:
        model.setdefault('data_preprocessor', cfg.data_preprocessor)
    scope = cfg.get('default_scope', 'mmpretrain')
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(model)


def complexity_row(config_path: str,
                   with_flops: bool = True) -> Optional[Dict]:
    """Measured and paper figures of the model of a config.

    The config's ``paper_reference`` holds ``source``, ``params``, ``flops``
    (None where the paper gives none; then no FLOPs are counted),
    ``input_shape``, optionally ``attention_params`` (the paper's count of
    the attention modules, as the SE modules of Table 3; then ours are
    counted in the whole model by :func:`count_attention_parameters`) and
    optionally ``part``: ``'model'`` (default) counts the whole model,
    ``'backbone'`` only ``model.backbone``. The papers' backbone figures are
    the sizes of their ImageNet classifiers, fc layer included (a ResNet's
    2048 x 1000 fc holds 2.05M parameters), which a detector's backbone does
    not have.

    Returns None for a config without a ``paper_reference``.

    Raises:
        ValueError: when ``part`` is not one of ``PARTS``.
    """
    cfg = Config.fromfile(config_path)
    reference = cfg.get('paper_reference')
    if reference is None:
        return None
    part = reference.get('part', 'model')
    if part not in PARTS:
        raise ValueError(f'{config_path}: paper_reference.part must be one '
                         f'of {PARTS}, got part={part!r}')
    model = build_model_from_config(cfg)
    paper_attention = reference.get('attention_params')
    attention = (
        count_attention_parameters(model)
        if paper_attention is not None else None)
    if part == 'backbone':
        model = model.backbone
    params = count_parameters(model)
    flops = (
        count_flops(model, tuple(reference['input_shape']))
        if with_flops and reference.get('flops') else None)
    row = dict(
        config=config_path,
        source=reference['source'],
        part=part,
        params=params,
        paper_params=reference['params'],
        params_ratio=params / reference['params'],
        flops=flops,
        paper_flops=reference.get('flops'),
        flops_ratio=(flops / reference['flops']
                     if flops is not None else None),
        attention_params=attention,
        paper_attention_params=paper_attention,
        input_shape=list(reference['input_shape']))
    return row
