from .complexity import (build_model_from_config, complexity_row,
                         count_flops, count_parameters)

__all__ = [
    'count_parameters', 'count_flops', 'build_model_from_config',
    'complexity_row'
]
