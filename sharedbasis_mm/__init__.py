"""sharedbasis_mm: shared filter bases and tied block convolution for
OpenMMLab.

Importing the package registers every component into mmengine's root
registries, where mmcv, mmdet and mmpretrain find them by ``type=``, and lets
``torch.load``'s default (``weights_only=True``) load the checkpoints of
mmengine's Runner (see :func:`register_runner_checkpoint_globals`).
"""
from mmengine.config.utils import MODULE2PACKAGE

from . import attention, backbones, evaluation, hooks, layers  # noqa: F401
from .layers import (BasisConv2d, SharedBasisConv2d, TiedBlockConv2d,
                     TiedLinear, batch_norm_scale_shift, check_conv_bn_order,
                     find_shared_bases, fuse_model, fuse_shared_basis,
                     fuse_tied, make_filter_basis, orthogonality_error)
from .utils import register_runner_checkpoint_globals
from .version import __version__

register_runner_checkpoint_globals()
# mmengine resolves ``package::path`` configs (another project's ``_base_``,
# ``mmengine.hub.get_config``) of the packages of this table only; the
# installed package's ``.mim/configs`` is then this repository's configs/.
MODULE2PACKAGE.setdefault('sharedbasis_mm', 'sharedbasis_mm')

__all__ = [
    '__version__', 'TiedBlockConv2d', 'TiedLinear', 'make_filter_basis',
    'BasisConv2d', 'SharedBasisConv2d', 'find_shared_bases',
    'orthogonality_error', 'fuse_shared_basis', 'fuse_tied', 'fuse_model',
    'check_conv_bn_order', 'batch_norm_scale_shift'
]
