"""Run mmdet's or mmpretrain's own command-line tools on our configs."""
import importlib
import os.path as osp
import runpy
import sys

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


def run_openmmlab_tool(tool: str) -> None:
    """Run ``tool`` of the package the config in ``sys.argv[1]`` is for.

    The config's ``default_scope`` (``mmdet`` or ``mmpretrain``) picks the
    package; the tool sees the same command line, so it has exactly that
    package's interface, with sharedbasis_mm registered.
    """
    import sharedbasis_mm  # noqa: F401
    if len(sys.argv) < 2 or sys.argv[1].startswith('-'):
        raise SystemExit(f'usage: {tool}.py CONFIG ... (the arguments of '
                         f'mmdet\'s or mmpretrain\'s tools/{tool}.py)')
    config = sys.argv[1]
    if not osp.isfile(config):
        raise SystemExit(f'{tool}.py: no config file at {config}')
    scope = Config.fromfile(config).get('default_scope', 'mmdet')
    runpy.run_path(openmmlab_tool_path(scope, tool), run_name='__main__')
