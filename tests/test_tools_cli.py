"""The command line of every tool of tools/: ``--help`` comes first (each
tool imports ``tool_utils`` first) and lists every option with its default,
after a description that is a whole sentence."""
import argparse
import ast
import glob
import os
import os.path as osp
import subprocess
import sys
from typing import List, Tuple

import pytest

from tool_loading import TOOLS, load_tool
from tool_utils import DefaultsHelpFormatter

ROOT = osp.dirname(TOOLS)


def is_tool(path: str) -> bool:
    """A script (``tool_utils`` and the modules beside the tools are not)."""
    with open(path) as f:
        return "if __name__ == '__main__':" in f.read()


# e.g. 'demo', 'analysis_tools/model_table'
TOOL_NAMES = sorted(
    osp.splitext(osp.relpath(path, TOOLS))[0]
    for path in glob.glob(osp.join(TOOLS, '*.py')) +
    glob.glob(osp.join(TOOLS, '*', '*.py')) if is_tool(path))
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


def first_import(path: str) -> Tuple[str, List[str]]:
    """The module of a tool's first import but those of ``os.path`` and
    ``sys``, and the statements before it that are not imports (with which
    a tool in a subfolder puts ``tools/`` on ``sys.path``)."""
    with open(path) as f:
        tree = ast.parse(f.read())
    before = []
    for node in tree.body[1:]:  # after the docstring
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module]
        else:
            before.append(ast.unparse(node))
            continue
        if not set(modules) <= {'os.path', 'sys'}:
            return modules[0], before
    raise AssertionError(f'{path} imports nothing')


def test_tool_names_cover_the_folders():
    # the layout of tools/, as mmdet groups its tools
    assert {
        'train', 'test', 'demo', 'demo_seeds', 'benchmark_tbc',
        'benchmark_backbones', 'benchmark_hook', 'benchmark_occlusion',
        'analysis_tools/analyze_coefficients', 'analysis_tools/model_table',
        'analysis_tools/occlusion_subsets', 'analysis_tools/plot_occlusion',
        'model_converters/net_rl2_to_mmpretrain',
        'model_converters/convert_cls_checkpoint', 'deployment/fuse_model',
        'dataset_converters/make_synthetic_coco', 'misc/model_index'
    } <= set(TOOL_NAMES)


@pytest.mark.parametrize('name', TOOL_NAMES)
def test_every_tool_imports_tool_utils_first(name):
    module, before = first_import(osp.join(TOOLS, f'{name}.py'))
    assert module == 'tool_utils'
    # tools/ itself holds tool_utils; a subfolder's tool puts tools/ first
    assert before == ([] if osp.dirname(name) == '' else [
        'sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))'
    ])


def assert_first_line_is_the_tools(output: str) -> None:
    assert output.startswith('usage: '), output[:500]
    assert 'pkg_resources' not in output
    assert 'No CUDA runtime' not in output


# the others import the same way (test above); these import mmdet,
# mmpretrain and matplotlib
@pytest.mark.parametrize('name', ['demo', 'analysis_tools/plot_occlusion'])
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
    assert parser.description.endswith('.'), (name, parser.description)
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


def test_a_tool_of_a_subfolder_runs_from_any_folder_quietly(tmp_path):
    """The converter of the authors' checkpoints, run from elsewhere: no
    message of torch or setuptools, and its whole first sentence."""
    result = subprocess.run(
        [sys.executable,
         osp.join(TOOLS, 'model_converters', 'net_rl2_to_mmpretrain.py'),
         '--help'],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=ROOT),
        capture_output=True,
        text=True,
        timeout=900)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ''
    assert result.stdout.startswith('usage: net_rl2_to_mmpretrain.py')
    description = ' '.join(result.stdout.split('\n\n')[1].split())
    assert description == ("Convert a checkpoint of the authors' code into "
                           'an mmpretrain checkpoint.')


def test_model_table_says_why_a_folder_lists_nothing(tmp_path):
    result = run_tool(
        osp.join('tools', 'analysis_tools', 'model_table.py'), 'configs/demo',
                      '--out-dir', str(tmp_path))
    assert result.returncode == 1
    assert result.stdout.startswith(
        'model_table: no config under configs/demo has a paper_reference; '
        "the model table lists the configs that reproduce a paper's table")
