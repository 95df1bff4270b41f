from .checkpoint import (classifier_to_backbone, load_checkpoint_file,
                         load_model_checkpoint,
                         register_runner_checkpoint_globals)
from .config_parsing import package_metafiles_read_once
from .openmmlab_tools import openmmlab_tool_path, run_openmmlab_tool
from .tool_args import DefaultsHelpFormatter, float_at_least, int_at_least

__all__ = [
    'classifier_to_backbone', 'load_checkpoint_file', 'load_model_checkpoint',
    'register_runner_checkpoint_globals', 'openmmlab_tool_path',
    'run_openmmlab_tool', 'DefaultsHelpFormatter',
    'package_metafiles_read_once', 'int_at_least', 'float_at_least'
]
