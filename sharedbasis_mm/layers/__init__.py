from .orthogonality import (find_basis_users, find_shared_bases,
                            orthogonality_error)
from .shared_basis import (BasisConv2d, SharedBasisConv2d,
                           SharedBasisSequential, batch_norm_scale_shift,
                           check_basis_conv_cfg, make_filter_basis)
from .tied import TiedBlockConv2d, TiedLinear

__all__ = [
    'TiedBlockConv2d', 'TiedLinear', 'make_filter_basis', 'BasisConv2d',
    'SharedBasisConv2d', 'SharedBasisSequential', 'batch_norm_scale_shift',
    'check_basis_conv_cfg', 'orthogonality_error', 'find_shared_bases',
    'find_basis_users'
]
