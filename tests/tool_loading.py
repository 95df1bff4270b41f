"""Import a command-line tool of ``tools/`` as a module, for the tests."""
import glob
import importlib.util
import os.path as osp
from types import ModuleType

TOOLS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools')


def tool_path(name: str) -> str:
    """The file of a tool: ``tools/<name>.py`` or ``tools/<folder>/<name>.py``
    (``name`` may name the folder, as ``'analysis_tools/model_table'``)."""
    paths = glob.glob(osp.join(TOOLS, f'{name}.py')) + glob.glob(
        osp.join(TOOLS, '*', f'{name}.py'))
    if len(paths) != 1:
        raise ValueError(f'expected one tool named {name!r} under {TOOLS}, '
                         f'found {len(paths)}: {paths}')
    return paths[0]


def load_tool(name: str) -> ModuleType:
    """The module of the tool ``name`` (see :func:`tool_path`).

    ``tools/`` is on ``sys.path`` (conftest.py puts it there), as for a tool
    run as a script, for its first import, ``tool_utils``.
    """
    spec = importlib.util.spec_from_file_location(
        osp.basename(name), tool_path(name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
