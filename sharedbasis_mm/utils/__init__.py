from .checkpoint import classifier_to_backbone
from .openmmlab_tools import openmmlab_tool_path, run_openmmlab_tool
from .tool_args import DefaultsHelpFormatter

__all__ = [
    'classifier_to_backbone', 'openmmlab_tool_path', 'run_openmmlab_tool',
    'DefaultsHelpFormatter'
]
