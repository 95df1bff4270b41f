"""Run mmdet's or mmpretrain's own command-line tools on our configs."""
import importlib
import os
import os.path as osp
import runpy
import sys
import textwrap

from mmengine.config import Config

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
    package's interface, with sharedbasis_mm registered.
    """
    import sharedbasis_mm  # noqa: F401
    if len(sys.argv) < 2 or sys.argv[1].startswith('-'):
        print_tools_help(tool)
        raise SystemExit(0 if sys.argv[1:2] in (['-h'], ['--help']) else 2)
    config = sys.argv[1]
    if not osp.isfile(config):
        raise SystemExit(f'{tool}.py: no config file at {config}')
    scope = Config.fromfile(config).get('default_scope', 'mmdet')
    # mmengine 0.10's checkpoints pickle its own objects (HistoryBuffer,
    # ...), which torch >= 2.6 refuses by default in ``torch.load``: without
    # this, ``--resume`` fails on every checkpoint these tools write.
    os.environ.setdefault('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    runpy.run_path(openmmlab_tool_path(scope, tool), run_name='__main__')
