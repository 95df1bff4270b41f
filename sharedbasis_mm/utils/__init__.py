from .checkpoint import (classifier_to_backbone, load_checkpoint_file,
                         load_model_checkpoint,
                         register_runner_checkpoint_globals)

__all__ = [
    'classifier_to_backbone', 'load_checkpoint_file', 'load_model_checkpoint',
    'register_runner_checkpoint_globals'
]
