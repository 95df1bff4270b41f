"""Converters of other code's checkpoints into the models of our configs.

:mod:`.net_rl2` converts the authors' checkpoints of Learning Deeply Shared
Filter Bases; each backbone family has its mapping in a module of its own,
imported here so that it registers. :mod:`.plain_to_shared_basis` (with the
math in :mod:`.basis_decomposition`) turns a plain pretrained model into a
shared-basis one.
"""
from . import (net_rl2_densenet, net_rl2_mobilenet_v2,  # noqa: F401
               net_rl2_resnet, net_rl2_resnext)
from .basis_decomposition import (decompose_shared_basis,
                                  decompose_shared_weight)
from .net_rl2 import (Entry, NetRL2ConversionError, convert_net_rl2,
                      convert_net_rl2_checkpoint, load_net_rl2_checkpoint,
                      module_entries, register_net_rl2_mapping)
from .plain_to_shared_basis import (PlainCheckpointError, calibrate_norms,
                                    convert_plain_state_dict)

__all__ = [
    'Entry', 'NetRL2ConversionError', 'convert_net_rl2',
    'convert_net_rl2_checkpoint', 'load_net_rl2_checkpoint', 'module_entries',
    'register_net_rl2_mapping', 'decompose_shared_basis',
    'decompose_shared_weight', 'convert_plain_state_dict', 'calibrate_norms',
    'PlainCheckpointError'
]
