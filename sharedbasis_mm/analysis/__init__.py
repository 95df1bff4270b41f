from .coefficients import (coefficient_similarity, mean_off_diagonal,
                           plot_coefficient_similarity,
                           shared_basis_coefficients)
from .gradient_flow import plot_gradient_flow

__all__ = [
    'shared_basis_coefficients', 'coefficient_similarity',
    'mean_off_diagonal', 'plot_coefficient_similarity', 'plot_gradient_flow'
]
