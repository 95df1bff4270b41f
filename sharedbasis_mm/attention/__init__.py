from .eca import ECALayer
from .tied_gcb import TiedGCB
from .tied_se import TiedSE

__all__ = ['ECALayer', 'TiedSE', 'TiedGCB']
