"""The registries every component of sharedbasis_mm registers into.

They are mmengine's root registries. mmcv's, mmdet's and mmpretrain's
registries are children of these and look in their parent for a name that is
not their own, so a component registered once here is found by
``mmdet.registry.MODELS``, ``mmpretrain.registry.MODELS`` and
``mmcv.cnn.build_conv_layer`` alike.
"""
from mmengine.registry import HOOKS, METRICS, MODELS

__all__ = ['MODELS', 'HOOKS', 'METRICS']
