"""Run mmdet's or mmpretrain's own command-line tools on our configs."""
import importlib
import os.path as osp
import runpy
import sys
import textwrap
from typing import List, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log

SCOPES = ('mmdet', 'mmpretrain')


def openmmlab_tool_path(scope: str, tool: str) -> str:
    """Path of ``tools/<tool>.py`` shipped in an OpenMMLab package."""
    if scope not in SCOPES:
        raise ValueError(f'the config\'s default_scope must be one of '
                         f'{SCOPES}, got default_scope={scope!r}')
    package = importlib.import_module(scope)
    path = osp.join(osp.dirname(package.__file__), '.mim', 'tools',
                    f'{tool}.py')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{scope} ships no tools/{tool}.py at {path}')
    return path


def launcher_of(argv: List[str]) -> Optional[str]:
    """The value of ``--launcher`` in a tool's command line, or None."""
    for index, arg in enumerate(argv):
        if arg == '--launcher' and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith('--launcher='):
            return arg.split('=', 1)[1]
    return None


def setup_cpu_distributed(cfg: Config) -> List[str]:
    """Start the gloo process group of a ``--launcher pytorch`` run on a
    machine without CUDA, and return the ``--cfg-options`` it needs.

    mmengine's ``init_dist`` only knows accelerators (it sets a CUDA
    device, which fails without one) and its runner gives DDP
    ``device_ids=[LOCAL_RANK]``, which DDP refuses for a CPU model. Here the
    process group is initialised with gloo from torchrun's environment
    (``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``, ``WORLD_SIZE``), so the
    runner finds it initialised and does not call ``init_dist``; the returned options keep the runner's own DDP
    wrapper (the config's ``model_wrapper_cfg``, else mmengine's default
    ``MMDistributedDataParallel`` with ``broadcast_buffers=False`` and the
    config's ``find_unused_parameters``) with ``device_ids=None``. Nothing
    changes where CUDA is available.
    """
    dist.init_process_group('gloo')
    wrapper = cfg.get('model_wrapper_cfg')
    options = ['model_wrapper_cfg.device_ids=None']
    if wrapper is None:
        find_unused = cfg.get('find_unused_parameters', False)
        options += [
            'model_wrapper_cfg.type=MMDistributedDataParallel',
            'model_wrapper_cfg.broadcast_buffers=False',
            f'model_wrapper_cfg.find_unused_parameters={find_unused}',
        ]
    print_log(
        f'no CUDA device: rank {dist.get_rank()} of {dist.get_world_size()} '
        f'runs on the CPU with the gloo backend', logger='current')
    return ['--cfg-options', *options]


def print_tools_help(tool: str) -> None:
    """Print the usage of ``tools/<tool>.py`` and the ``--help`` of mmdet's
    and mmpretrain's ``tools/<tool>.py``, whose options it takes."""
    print(f'usage: {tool}.py CONFIG [OPTIONS]\n')
    print(
        textwrap.fill(
            f'Runs the tools/{tool}.py of the package of the config\'s '
            'default_scope, with sharedbasis_mm registered: mmdet\'s for '
            'detection configs, mmpretrain\'s for classification configs. '
            'OPTIONS are those of that tool:'),
        end='\n\n')
    argv = sys.argv
    for scope in SCOPES:
        print(f'--- {scope}\'s tools/{tool}.py ---', flush=True)
        sys.argv = [f'{tool}.py', '--help']
        try:
            runpy.run_path(
                openmmlab_tool_path(scope, tool), run_name='__main__')
        except SystemExit:
            pass
        finally:
            sys.argv = argv
        print()


def run_openmmlab_tool(tool: str) -> None:
    """Run ``tool`` of the package the config in ``sys.argv[1]`` is for.

    The config's ``default_scope`` (``mmdet`` or ``mmpretrain``) picks the
    package; the tool sees the same command line, so it has exactly that
    package's interface, with sharedbasis_mm registered. With
    ``--launcher pytorch`` on a machine without CUDA, the run is made to
    work on the CPU first (:func:`setup_cpu_distributed`).
    """
    import sharedbasis_mm  # noqa: F401
    if len(sys.argv) < 2 or sys.argv[1].startswith('-'):
        print_tools_help(tool)
        raise SystemExit(0 if sys.argv[1:2] in (['-h'], ['--help']) else 2)
    config = sys.argv[1]
    if not osp.isfile(config):
        raise SystemExit(f'{tool}.py: no config file at {config}')
    cfg = Config.fromfile(config)
    scope = cfg.get('default_scope', 'mmdet')
    if launcher_of(sys.argv) == 'pytorch' and not torch.cuda.is_available():
        sys.argv += setup_cpu_distributed(cfg)
    runpy.run_path(openmmlab_tool_path(scope, tool), run_name='__main__')
