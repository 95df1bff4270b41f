"""The README's form: size, citation, usage snippet, architecture, links.

The README is an OpenMMLab project README (what it is, install, usage,
results, tools, architecture, citation); reference material lives in
docs/. These tests keep it that short and keep its links, paths and
architecture section true to the repository.
"""
import glob
import os
import os.path as osp
import re
from typing import Dict, List, Set

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
README = osp.join(ROOT, 'README.md')
PAGES = [README] + sorted(glob.glob(osp.join(ROOT, 'docs', '*.md')))
PACKAGE = osp.join(ROOT, 'sharedbasis_mm')
MAX_LINES = 400
MAX_BYTES = 24_000
USAGE_WITHIN = 120
SHARED_BASIS_TITLE = ('Learning Deeply Shared Filter Bases for Efficient '
                      'ConvNets')
TBC_TITLE = ('Tied Block Convolution: Leaner and Better CNNs with Shared '
             'Thinner Filters')
PAPERS = {'2006.05066': SHARED_BASIS_TITLE, '2009.12021': TBC_TITLE}
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)\)')
HEADING = re.compile(r'^(#{1,6})\s+(.*?)\s*$')
CODE_BLOCK = re.compile(r'^```.*?^```', re.S | re.M)
REPO_PATH = re.compile(r'(?<![\w./-])((?:tools|configs)/[\w/.-]+\.(?:py|sh))')


def read(path: str) -> str:
    with open(path, encoding='utf-8') as f:
        return f.read()


def fenced_blocks(text: str, language: str) -> List[str]:
    return re.findall(rf'^```{language}\n(.*?)^```', text, re.S | re.M)


def section(text: str, title: str) -> str:
    """The text under the level-2 heading ``title``, up to the next one."""
    match = re.search(rf'^## {re.escape(title)}\n(.*?)(?=^## |\Z)', text,
                      re.S | re.M)
    assert match, f'README.md has no "## {title}" section'
    return match.group(1)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped,
    spaces as hyphens."""
    slug = re.sub(r'[^\w\- ]', '', heading.strip().lower())
    return slug.replace(' ', '-')


def anchors(path: str) -> Set[str]:
    text = CODE_BLOCK.sub('', read(path))
    found: Dict[str, int] = {}
    result = set()
    for line in text.splitlines():
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_anchor(match.group(2))
        count = found.get(slug, 0)
        found[slug] = count + 1
        result.add(slug if count == 0 else f'{slug}-{count}')
    return result


def test_readme_is_at_most_400_lines_and_24_kb():
    with open(README, 'rb') as f:
        data = f.read()
    assert data.count(b'\n') <= MAX_LINES
    assert len(data) <= MAX_BYTES


def test_readme_cites_both_papers_in_bibtex():
    blocks = fenced_blocks(read(README), 'bibtex')
    assert len(blocks) == 1, 'one bibtex block in the citation section'
    entries = re.split(r'\n(?=@)', blocks[0].strip())
    assert len(entries) == len(PAPERS)
    for arxiv_id, title in PAPERS.items():
        entry = [e for e in entries if arxiv_id in e]
        assert len(entry) == 1, f'no bibtex entry of arXiv {arxiv_id}'
        assert re.match(r'@\w+\{\w+,', entry[0])
        fields = dict(re.findall(r'^\s*(\w+)=\{(.*)\},?$', entry[0], re.M))
        assert fields['title'] == title
        assert fields['author'] and fields['year'] in ('2020', '2021')
    # and the title and description link both papers
    head = ''.join(re.split(r'^(?=## )', read(README), flags=re.M)[:2])
    for arxiv_id, title in PAPERS.items():
        assert f'[{title}](https://arxiv.org/abs/{arxiv_id})' in head


def test_usage_snippet_in_the_first_120_lines():
    first = ''.join(read(README).splitlines(True)[:USAGE_WITHIN])
    assert ("custom_imports = dict(imports=['sharedbasis_mm'], "
            'allow_failed_imports=False)') in first
    config = [
        block for block in fenced_blocks(first, 'python')
        if 'custom_hooks' in block
    ]
    assert len(config) == 1, ('a complete config example (backbone, plugin, '
                              'hook, metric) within the first 120 lines')
    for part in ("type='SharedBasisResNet'", 'plugins=', 'custom_hooks',
                 "type='CocoOcclusionRatioMetric'"):
        assert part in config[0]


def test_usage_config_builds():
    """The README's config example loads and its components build."""
    from mmengine.config import Config

    import sharedbasis_mm  # noqa: F401
    from mmdet.registry import HOOKS, METRICS, MODELS
    from sharedbasis_mm.attention import TiedGCB
    from sharedbasis_mm.layers import find_shared_bases

    code = [
        block for block in fenced_blocks(read(README), 'python')
        if 'custom_hooks' in block
    ][0]
    cfg = Config.fromstring(code, '.py')
    assert cfg.custom_imports.imports == ['sharedbasis_mm']
    backbone = MODELS.build(cfg.model.backbone)
    # ResNet-50: one basis per residual group; a TiedGCB after conv3 of each
    # block of stages 2-4 (4 + 6 + 3 blocks)
    assert len(find_shared_bases(backbone)) == 4
    assert sum(isinstance(m, TiedGCB) for m in backbone.modules()) == 13
    hook = HOOKS.build(cfg.custom_hooks[0])
    assert type(hook).__name__ == 'OrthogonalityLossHook'
    assert hook.loss_weight == 10.
    metric = METRICS.get(cfg.val_evaluator.type)
    assert metric.__name__ == 'CocoOcclusionRatioMetric'


def test_architecture_section_names_the_package_folders():
    text = section(read(README), 'Architecture')
    named = set(re.findall(r'`sharedbasis_mm/(\w+)/`', text))
    packages = {
        name
        for name in os.listdir(PACKAGE)
        if osp.isfile(osp.join(PACKAGE, name, '__init__.py'))
    }
    assert named == packages
    # the configs/ and tools/ folders it names exist
    for top in ('configs', 'tools'):
        line = re.search(rf'^- `{top}/`:(.*?)(?=^- |\Z)', text, re.S | re.M)
        assert line, f'the architecture section names {top}/'
        for folder in re.findall(r'`(\w+)/`', line.group(1)):
            assert osp.isdir(osp.join(ROOT, top, folder)), f'{top}/{folder}'


def test_tools_section_lists_every_tool():
    """Every command-line tool of tools/ (a shell script or a Python file
    with a ``__main__`` block; the launcher and the plumbing aside) is in
    the README's tool list."""
    text = section(read(README), 'Tools')
    tools = []
    for path in glob.glob(osp.join(ROOT, 'tools', '**', '*.*'),
                          recursive=True):
        name = osp.basename(path)
        if 'tool_utils' in path or name == 'dist_launch.sh':
            continue
        is_main = name.endswith('.py') and "__name__ == '__main__'" in read(
            path)
        if name.endswith('.sh') or is_main:
            tools.append(name)
    assert len(tools) >= 20
    for name in tools:
        assert f'{name}`' in text, f'tools/**/{name} is not in "## Tools"'


@pytest.mark.parametrize('page', PAGES, ids=lambda p: osp.relpath(p, ROOT))
def test_relative_links_resolve(page):
    text = CODE_BLOCK.sub('', read(page))
    for target in LINK.findall(text):
        if re.match(r'[a-z]+:', target):
            continue  # https:, mailto:
        path, _, anchor = target.partition('#')
        resolved = (osp.normpath(osp.join(osp.dirname(page), path))
                    if path else page)
        assert osp.exists(resolved), f'{page}: broken link {target}'
        if anchor and resolved.endswith('.md'):
            assert anchor in anchors(resolved), (
                f'{page}: no heading for {target}')


@pytest.mark.parametrize('page', PAGES, ids=lambda p: osp.relpath(p, ROOT))
def test_named_tool_and_config_paths_exist(page):
    for path in REPO_PATH.findall(read(page)):
        assert osp.isfile(osp.join(ROOT, path)), f'{page}: {path}'
