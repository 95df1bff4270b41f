from .orthogonality import (find_basis_users, find_shared_bases,
                            orthogonality_error)
from .shared_basis import (BasisConv2d, FilterBasis, SharedBasisConv2d,
                           batch_norm_scale_shift)
from .tied import TiedBlockConv2d, TiedLinear

__all__ = [
    'TiedBlockConv2d', 'TiedLinear', 'FilterBasis', 'BasisConv2d',
    'SharedBasisConv2d', 'batch_norm_scale_shift', 'orthogonality_error',
    'find_shared_bases', 'find_basis_users'
]
