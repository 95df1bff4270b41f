"""sharedbasis_mm: shared filter bases and tied block convolution for
OpenMMLab.

Importing the package registers every component into mmengine's root
registries, where mmcv, mmdet and mmpretrain find them by ``type=``.
"""
from mmengine.config.utils import MODULE2PACKAGE

from . import attention, backbones, evaluation, hooks, layers  # noqa: F401
from .deploy import fuse_shared_basis
from .layers import (BasisConv2d, FilterBasis, SharedBasisConv2d,
                     TiedBlockConv2d, TiedLinear, find_shared_bases,
                     orthogonality_error)
from .version import __version__

# mmengine resolves ``package::path`` configs (another project's ``_base_``,
# ``mmengine.hub.get_config``) of the packages of this table only; the
# installed package's ``.mim/configs`` is then this repository's configs/.
MODULE2PACKAGE.setdefault('sharedbasis_mm', 'sharedbasis_mm')

__all__ = [
    '__version__', 'TiedBlockConv2d', 'TiedLinear', 'FilterBasis',
    'BasisConv2d', 'SharedBasisConv2d', 'find_shared_bases',
    'orthogonality_error', 'fuse_shared_basis'
]
