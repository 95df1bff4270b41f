"""sharedbasis_mm: shared filter bases and tied block convolution for
OpenMMLab.

Importing the package registers every component into mmengine's root
registries, where mmcv, mmdet and mmpretrain find them by ``type=``.
"""
from . import attention, backbones, evaluation, hooks, layers  # noqa: F401
from .deploy import fuse_shared_basis
from .layers import (BasisConv2d, SharedBasisConv2d, TiedBlockConv2d,
                     TiedLinear, find_shared_bases, make_filter_basis,
                     orthogonality_error)
from .version import __version__

__all__ = [
    '__version__', 'TiedBlockConv2d', 'TiedLinear', 'make_filter_basis',
    'BasisConv2d', 'SharedBasisConv2d', 'find_shared_bases',
    'orthogonality_error', 'fuse_shared_basis'
]
