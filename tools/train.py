"""Train a model from a config: mmdet's or mmpretrain's own tools/train.py.

Usage: python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp]
       [--cfg-options ...] [--launcher pytorch]
(the arguments of the tool of the config's ``default_scope``).
"""
from sharedbasis_mm.utils import run_openmmlab_tool

if __name__ == '__main__':
    run_openmmlab_tool('train')
