from .tied_gcb import TiedGCB
from .tied_se import TiedSE

__all__ = ['TiedSE', 'TiedGCB']
