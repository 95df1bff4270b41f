"""The README's commands, run in order in one fresh shell.

Every ``bash`` block of README.md is marked on the line before it:
``<!-- readme-test -->`` (run as written), ``<!-- readme-test: COMMANDS -->``
(run COMMANDS, a shortened form: a training of a few iterations instead of
hours) or ``<!-- readme-test: not run, REASON -->``.
"""
import os
import os.path as osp
import re
import subprocess
import sys
from typing import List, NamedTuple, Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
README = osp.join(ROOT, 'README.md')
BLOCK = re.compile(r'```bash\n(.*?)```', re.S)
MARKER = re.compile(r'<!-- readme-test(?::\s*(.*?))?\s*-->\s*$', re.S)
ACTIVATE = 'source .venv/bin/activate'


class Block(NamedTuple):
    line: int
    code: str
    marker: Optional[re.Match]


def readme_blocks() -> List[Block]:
    with open(README) as f:
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


def test_every_bash_block_of_the_readme_is_marked():
    blocks = readme_blocks()
    assert blocks
    for block in blocks:
        assert block.marker, (f'README.md:{block.line}: a bash block '
                              'without a <!-- readme-test ... --> marker')
        spec = block.marker.group(1)
        if spec and spec.startswith('not run'):
            assert spec[len('not run'):].strip(' ,'), (
                f'README.md:{block.line}: say why it is not run')


def test_readme_commands_run_in_order_in_a_fresh_shell():
    script = ['set -euo pipefail']
    env = {'PATH': '/usr/local/bin:/usr/bin:/bin', 'HOME': os.environ['HOME']}
    if not osp.isfile(osp.join(ROOT, '.venv', 'bin', 'activate')):
        # a checkout without its own .venv (a git worktree of a shared
        # environment): the environment running the tests, on this checkout
        venv = osp.dirname(osp.dirname(sys.executable))
        script.append(f'alias_activate() {{ source {venv}/bin/activate; }}')
        env['PYTHONPATH'] = ROOT
    for block in readme_blocks():
        spec = block.marker.group(1)
        if spec and spec.startswith('not run'):
            continue
        commands = block.code if spec is None else spec
        if 'PYTHONPATH' in env:
            commands = commands.replace(ACTIVATE, 'alias_activate')
        script += [f'echo "+ README.md:{block.line}"', commands]
    result = subprocess.run(['bash', '-c', '\n'.join(script)],
                            cwd=ROOT,
                            env=env,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT,
                            text=True,
                            timeout=1200)
    assert result.returncode == 0, result.stdout[-5000:]
