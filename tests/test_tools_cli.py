"""The command line of every tool of tools/: ``--help`` comes first (each
tool imports ``_quiet_imports`` first) and lists every option with its
default."""
import argparse
import ast
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest

from sharedbasis_mm.utils import DefaultsHelpFormatter
from tool_loading import TOOLS, load_tool

ROOT = osp.dirname(TOOLS)
TOOL_NAMES = sorted(
    osp.splitext(osp.basename(path))[0]
    for path in glob.glob(osp.join(TOOLS, '*.py'))
    if not osp.basename(path).startswith('_'))
# the tools that run mmdet's or mmpretrain's own tool, and have its options
OPENMMLAB_TOOLS = ('train', 'test')


def run_tool(*args: str, cwd: str = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, *args],
                          cwd=cwd,
                          env=env,
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          timeout=900)


def first_import(path: str) -> str:
    """The module of the first import statement of a tool."""
    with open(path) as f:
        tree = ast.parse(f.read())
    node = next(node for node in tree.body
                if isinstance(node, (ast.Import, ast.ImportFrom)))
    return node.module if isinstance(node,
                                     ast.ImportFrom) else node.names[0].name


@pytest.mark.parametrize('name', TOOL_NAMES)
def test_every_tool_imports_quiet_imports_first(name):
    assert first_import(osp.join(TOOLS, f'{name}.py')) == '_quiet_imports'


def assert_first_line_is_the_tools(output: str) -> None:
    assert output.startswith('usage: '), output[:500]
    assert 'pkg_resources' not in output
    assert 'No CUDA runtime' not in output


# the others import the same way (test above); these import mmdet,
# mmpretrain and matplotlib
@pytest.mark.parametrize('name', ['demo', 'plot_occlusion'])
def test_first_line_of_a_tools_output_is_its_own(name):
    result = run_tool(osp.join('tools', f'{name}.py'), '--help')
    assert result.returncode == 0, result.stdout
    assert_first_line_is_the_tools(result.stdout)


@pytest.mark.parametrize('name', OPENMMLAB_TOOLS)
def test_train_and_test_help_shows_mmdet_and_mmpretrain_options(name):
    result = run_tool(osp.join('tools', f'{name}.py'), '--help')
    assert result.returncode == 0, result.stdout
    assert_first_line_is_the_tools(result.stdout)
    for scope in ('mmdet', 'mmpretrain'):
        assert f"--- {scope}'s tools/{name}.py ---" in result.stdout
    # options of both OpenMMLab tools, which sharedbasis_mm passes on
    assert result.stdout.count('--cfg-options') >= 2
    assert result.stdout.count('--work-dir') >= 2
    no_config = run_tool(osp.join('tools', f'{name}.py'))
    assert no_config.returncode == 2
    assert no_config.stdout.startswith(f'usage: {name}.py CONFIG')


class ParserSeen(Exception):

    def __init__(self, parser: argparse.ArgumentParser):
        self.parser = parser


@pytest.mark.parametrize(
    'name', [n for n in TOOL_NAMES if n not in OPENMMLAB_TOOLS])
def test_help_shows_every_options_default(name, monkeypatch):

    def catch(parser, *args, **kwargs):
        raise ParserSeen(parser)

    monkeypatch.setattr(argparse.ArgumentParser, 'parse_args', catch)
    tool = load_tool(name)
    with pytest.raises(ParserSeen) as seen:
        (getattr(tool, 'parse_args', None) or tool.main)()
    parser = seen.value.parser
    assert parser.formatter_class is DefaultsHelpFormatter
    # the help wraps long lines (and paths at their hyphens)
    help_text = ''.join(parser.format_help().split())
    for action in parser._actions:
        if not action.option_strings or action.default is None or (
                action.default is False
                or action.default is argparse.SUPPRESS):
            continue
        assert action.help, f'{name}: {action.option_strings} has no help'
        default = action.default
        if isinstance(default, (list, tuple)):
            default = ' '.join(map(str, default))
        assert ''.join(f'(default: {default})'.split()) in help_text or (
            '(default:' in action.help), (name, action.option_strings)


def test_model_table_says_why_a_folder_lists_nothing(tmp_path):
    result = run_tool(osp.join('tools', 'model_table.py'), 'configs/demo',
                      '--out-dir', str(tmp_path))
    assert result.returncode == 1
    assert result.stdout.startswith(
        'model_table: no config under configs/demo has a paper_reference; '
        "the model table lists the configs that reproduce a paper's table")
