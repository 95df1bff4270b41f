from .conv_attributes import ConvGeometry, ConvModuleAttributes
from .fusion import (SwitchToDeployMixin, batch_norm_scale_shift,
                     check_conv_bn_order, fuse_model, fuse_shared_basis,
                     fuse_tied)
from .orthogonality import (find_basis_users, find_shared_bases,
                            orthogonality_error)
from .shared_basis import (BasisConv2d, SharedBasisConv2d,
                           SharedBasisSequential, check_basis_conv_cfg,
                           check_basis_norm_groups, make_filter_basis,
                           register_bases)
from .tied import TiedBlockConv2d, TiedLinear

__all__ = [
    'TiedBlockConv2d', 'TiedLinear', 'make_filter_basis', 'BasisConv2d',
    'SharedBasisConv2d', 'SharedBasisSequential', 'batch_norm_scale_shift',
    'check_basis_conv_cfg', 'check_basis_norm_groups', 'orthogonality_error',
    'find_shared_bases', 'find_basis_users', 'fuse_shared_basis',
    'fuse_tied', 'fuse_model', 'check_conv_bn_order', 'ConvGeometry',
    'ConvModuleAttributes', 'SwitchToDeployMixin', 'register_bases'
]
