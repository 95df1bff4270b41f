"""Import a command-line tool of ``tools/`` as a module, for the tests."""
import importlib.util
import os.path as osp
import sys
from types import ModuleType

TOOLS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools')


def load_tool(name: str) -> ModuleType:
    """The module of ``tools/<name>.py``.

    ``tools/`` goes on ``sys.path`` as when the tool runs as a script, for
    its first import, ``_quiet_imports``.
    """
    if TOOLS not in sys.path:
        sys.path.append(TOOLS)
    spec = importlib.util.spec_from_file_location(
        name, osp.join(TOOLS, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
