"""Converters of other code's checkpoints into the models of our configs.

:mod:`.net_rl2` converts the authors' checkpoints of Learning Deeply Shared
Filter Bases; each backbone family has its mapping in a module of its own,
imported here so that it registers.
"""
from . import (net_rl2_densenet, net_rl2_mobilenet_v2,  # noqa: F401
               net_rl2_resnet, net_rl2_resnext)
from .net_rl2 import (Entry, NetRL2ConversionError, convert_net_rl2,
                      convert_net_rl2_checkpoint, load_net_rl2_checkpoint,
                      module_entries, register_net_rl2_mapping)

__all__ = [
    'Entry', 'NetRL2ConversionError', 'convert_net_rl2',
    'convert_net_rl2_checkpoint', 'load_net_rl2_checkpoint', 'module_entries',
    'register_net_rl2_mapping'
]
