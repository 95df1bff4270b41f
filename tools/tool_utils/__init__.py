"""The plumbing of the command-line tools of ``tools/``, not of the library.

Every tool imports this package first: importing it hides the known
import-time messages of third-party packages (:mod:`.quiet_imports`), so it
must come before torch, mmengine and mmcv are imported. A tool in a
subfolder of ``tools/`` first puts ``tools/`` on ``sys.path``.

Modules:

- :mod:`.arguments`: argparse types and the ``--help`` formatter;
- :mod:`.benchmark_options`: the timing options of the benchmark tools;
- :mod:`.openmmlab_tools`: run mmdet's or mmpretrain's own tools;
- :mod:`.config_parsing`: parse many configs, reading mim's metafiles once;
- :mod:`.deployment`: ONNX export and run, and output comparison.
"""
from . import quiet_imports  # noqa: F401,I001 (first: see the module)
import os.path as osp

from .arguments import DefaultsHelpFormatter, float_at_least, int_at_least

# the folder of tools/ and configs/: the repository, or an installed
# package's .mim
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

__all__ = ['ROOT', 'DefaultsHelpFormatter', 'int_at_least', 'float_at_least']
