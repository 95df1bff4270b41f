from .coefficients import (coefficient_similarity, mean_off_diagonal,
                           plot_coefficient_similarity,
                           shared_basis_coefficients)
from .complexity import (build_model_from_config, complexity_row,
                         count_attention_parameters, count_flops,
                         count_parameters)
from .gradient_flow import plot_gradient_flow

__all__ = [
    'count_parameters', 'count_attention_parameters', 'count_flops', 'build_model_from_config',
    'complexity_row', 'shared_basis_coefficients', 'coefficient_similarity',
    'mean_off_diagonal', 'plot_coefficient_similarity', 'plot_gradient_flow'
]
