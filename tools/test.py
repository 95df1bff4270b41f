"""Test a checkpoint: mmdet's or mmpretrain's own tools/test.py.

Usage: python tools/test.py CONFIG CHECKPOINT [--out FILE] [--work-dir DIR]
       [--cfg-options ...] [--launcher pytorch]
(the arguments of the tool of the config's ``default_scope``).
"""
import tool_utils  # noqa: F401,I001 (first: see tools/tool_utils)
from tool_utils.openmmlab_tools import run_openmmlab_tool

if __name__ == '__main__':
    run_openmmlab_tool('test')
