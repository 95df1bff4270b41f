"""Test a checkpoint: mmdet's or mmpretrain's own tools/test.py.

Usage: python tools/test.py CONFIG CHECKPOINT [--out FILE] [--work-dir DIR]
       [--cfg-options ...] [--launcher pytorch]
(the arguments of the tool of the config's ``default_scope``).
"""
import _quiet_imports  # noqa: F401,I001 (first: see the module)
from sharedbasis_mm.utils import run_openmmlab_tool

if __name__ == '__main__':
    run_openmmlab_tool('test')
