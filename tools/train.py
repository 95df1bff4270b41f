"""Train a model from a config: mmdet's or mmpretrain's own tools/train.py.

Usage: python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp]
       [--cfg-options ...] [--launcher pytorch]
(the arguments of the tool of the config's ``default_scope``).
"""
import _quiet_imports  # noqa: F401,I001 (first: see the module)
from sharedbasis_mm.utils import run_openmmlab_tool

if __name__ == '__main__':
    run_openmmlab_tool('train')
