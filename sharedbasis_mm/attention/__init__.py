from .eca import ECALayer
from .tied_gcb import TiedGCB
from .tied_se import TiedSE, replace_se_layers

__all__ = ['ECALayer', 'TiedSE', 'TiedGCB', 'replace_se_layers']
