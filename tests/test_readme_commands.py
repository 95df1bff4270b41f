"""The commands of the README and of the docs pages, run in order.

Every ``bash`` block of README.md and of docs/*.md is marked on the line
before it: ``<!-- readme-test -->`` (run as written),
``<!-- readme-test: COMMANDS -->`` (run COMMANDS, a shortened form: a
training of a few iterations instead of hours) or
``<!-- readme-test: not run, REASON -->``. Each file's blocks run in order in
one fresh shell; a docs page's shell starts with the environment activated,
as the README tells its reader to do once.
"""
import glob
import os
import os.path as osp
import re
import subprocess
import sys
from typing import List, NamedTuple, Optional

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
README = 'README.md'
PAGES = [README] + sorted(
    osp.relpath(path, ROOT)
    for path in glob.glob(osp.join(ROOT, 'docs', '*.md')))
BLOCK = re.compile(r'```bash\n(.*?)```', re.S)
MARKER = re.compile(r'<!-- readme-test(?::\s*(.*?))?\s*-->\s*$', re.S)
ACTIVATE = 'source .venv/bin/activate'


class Block(NamedTuple):
    line: int
    code: str
    marker: Optional[re.Match]


def bash_blocks(page: str) -> List[Block]:
    """The bash blocks of ``page`` (a path relative to the repository) and
    the marker before each (None where there is none)."""
    with open(osp.join(ROOT, page)) as f:
        text = f.read()
    blocks = []
    for match in BLOCK.finditer(text):
        before = text[:match.start()].rstrip()
        comment_start = before.rfind('<!--')
        marker = MARKER.match(before[comment_start:]) if (
            comment_start >= 0 and before.endswith('-->')) else None
        blocks.append(
            Block(text.count('\n', 0, match.start()) + 1, match.group(1),
                  marker))
    return blocks


def commands_to_run(block: Block) -> Optional[str]:
    """What the test runs for ``block``: None for a block not run."""
    spec = block.marker.group(1)
    if spec and spec.startswith('not run'):
        return None
    return block.code if spec is None else spec


def test_the_readme_has_commands_that_run():
    assert any(
        commands_to_run(block) for block in bash_blocks(README)
        if block.marker)


@pytest.mark.parametrize('page', PAGES)
def test_every_bash_block_is_marked(page):
    for block in bash_blocks(page):
        assert block.marker, (f'{page}:{block.line}: a bash block '
                              'without a <!-- readme-test ... --> marker')
        spec = block.marker.group(1)
        if spec and spec.startswith('not run'):
            assert spec[len('not run'):].strip(' ,'), (
                f'{page}:{block.line}: say why it is not run')


@pytest.mark.parametrize('page', [
    page for page in PAGES
    if any(block.marker and commands_to_run(block)
           for block in bash_blocks(page))
])
def test_commands_run_in_order_in_a_fresh_shell(page):
    script = ['set -euo pipefail']
    env = {'PATH': '/usr/local/bin:/usr/bin:/bin', 'HOME': os.environ['HOME']}
    own_venv = osp.isfile(osp.join(ROOT, '.venv', 'bin', 'activate'))
    if not own_venv:
        # a checkout without its own .venv (a git worktree of a shared
        # environment): the environment running the tests, on this checkout
        venv = osp.dirname(osp.dirname(sys.executable))
        script.append(f'alias_activate() {{ source {venv}/bin/activate; }}')
        env['PYTHONPATH'] = ROOT
    if page != README:
        script.append(ACTIVATE)
    for block in bash_blocks(page):
        commands = commands_to_run(block)
        if commands is not None:
            script += [f'echo "+ {page}:{block.line}"', commands]
    script = '\n'.join(script)
    if not own_venv:
        script = script.replace(ACTIVATE, 'alias_activate')
    result = subprocess.run(['bash', '-c', script],
                            cwd=ROOT,
                            env=env,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT,
                            text=True,
                            timeout=1200)
    assert result.returncode == 0, result.stdout[-5000:]
