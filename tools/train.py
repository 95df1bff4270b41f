"""Train a model from a config: mmdet's or mmpretrain's own tools/train.py.

Usage: python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp]
       [--cfg-options ...] [--launcher pytorch]
(the arguments of the tool of the config's ``default_scope``).
"""
import tool_utils  # noqa: F401,I001 (first: see tools/tool_utils)
from tool_utils.openmmlab_tools import run_openmmlab_tool

if __name__ == '__main__':
    run_openmmlab_tool('train')
