"""The library holds no tool plumbing: no module of ``sharedbasis_mm``
imports argparse or the tools' ``tool_utils`` (they live in
``tools/tool_utils/``), and ``sharedbasis_mm/utils`` holds runtime helpers
only."""
import ast
import glob
import os
import os.path as osp
from typing import Set

from tool_loading import TOOLS

PACKAGE = osp.join(osp.dirname(TOOLS), 'sharedbasis_mm')
# the runtime helpers: checkpoint loading, argument checks, deprecations
UTILS = {'__init__', 'checkpoint', 'validation', 'deprecation'}


def imported_modules(path: str) -> Set[str]:
    """The top-level names of the modules ``path`` imports (anywhere in it,
    relative imports left out)."""
    with open(path) as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.add(node.module.split('.')[0])
    return names


def test_the_scan_sees_argparse_where_it_is_imported():
    assert 'argparse' in imported_modules(
        osp.join(TOOLS, 'tool_utils', 'arguments.py'))
    assert 'tool_utils' in imported_modules(
        osp.join(TOOLS, 'analysis_tools', 'model_table.py'))


def test_no_library_module_imports_argparse_or_tool_utils():
    # glob skips the hidden .mim, which links to tools/
    paths = glob.glob(osp.join(PACKAGE, '**', '*.py'), recursive=True)
    assert osp.join(PACKAGE, 'analysis', 'benchmark.py') in paths
    offenders = {
        osp.relpath(path, PACKAGE): sorted(
            imported_modules(path) & {'argparse', 'tool_utils'})
        for path in paths
    }
    assert {path: names
            for path, names in offenders.items() if names} == {}


def test_utils_holds_runtime_helpers_only():
    modules = {
        osp.splitext(name)[0]
        for name in os.listdir(osp.join(PACKAGE, 'utils'))
        if name.endswith('.py')
    }
    assert modules <= UTILS, sorted(modules - UTILS)
    # the synthetic COCO generator is in tools/dataset_converters/
    assert glob.glob(osp.join(PACKAGE, 'datasets', '*.py')) == []
