"""Imported first by every tool (through ``import tool_utils``): hide the
known import-time messages of third-party packages, so that a tool's first
line of output is its own.

- ``pkg_resources is deprecated as an API`` (setuptools >= 67), a
  UserWarning raised when mmengine and mmcv import ``pkg_resources``;
- ``No CUDA runtime is found, using CUDA_HOME=...``, logged by
  ``torch.utils.cpp_extension`` on a machine with a CUDA toolkit but no GPU.

Tools only: importing ``sharedbasis_mm`` changes no warning filter. This
module uses the standard library only, so it runs before torch, mmengine
and mmcv are imported.
"""
import logging
import warnings

warnings.filterwarnings(
    'ignore', message='pkg_resources is deprecated', category=UserWarning)
logging.getLogger('torch.utils.cpp_extension').addFilter(
    lambda record: not record.getMessage().startswith(
        'No CUDA runtime is found'))
