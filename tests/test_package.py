"""The package as other projects and mim see it: what ``import
sharedbasis_mm`` loads and which folder imports which (in this checkout),
and, in the package installed in the environment (``make install`` in this
checkout, not ``PYTHONPATH``), the configs, tools and model index in
``sharedbasis_mm/.mim``, ``sharedbasis_mm::`` configs from outside the
checkout, ``mim search/train/test``.
"""
import ast
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile
from typing import List

import pytest
import yaml

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
BIN = osp.dirname(sys.executable)
DEMO_CONFIG = 'configs/demo/faster-rcnn_r18-s8u1_fpn_synthetic.py'


def run(args, cwd, timeout=600,
        checkout: bool = False) -> subprocess.CompletedProcess:
    """Run ``args`` in ``cwd`` with the environment's installed package, or
    with this checkout's if ``checkout``."""
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['PATH'] = BIN + os.pathsep + env.get('PATH', '')
    if checkout:
        env['PYTHONPATH'] = ROOT
    return subprocess.run(
        args,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout)


def python(code: str, cwd, checkout: bool = False) -> str:
    result = run([sys.executable, '-c', code], cwd, checkout=checkout)
    assert result.returncode == 0, result.stdout[-3000:]
    return result.stdout


# mmdet 3.3's ``mmdet.utils`` imports its MOT error plots (matplotlib.pyplot,
# seaborn) at import time, and every ``mmdet.models`` module imports
# ``mmdet.utils``; stood in for, what imports matplotlib is ours.
IMPORT_WITHOUT_MMDET_PLOTS = """
import builtins, json, sys, types
plots = types.ModuleType('mmdet.utils.mot_error_visualize')
plots.imshow_mot_errors = None
sys.modules[plots.__name__] = plots
real_import = builtins.__import__
importers = set()
def recording_import(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {}).get('__name__', '')
    if (level == 0 and name.partition('.')[0] == 'matplotlib'
            and not importer.startswith('matplotlib')):
        importers.add(importer)
    return real_import(name, globals, locals, fromlist, level)
builtins.__import__ = recording_import
import sharedbasis_mm
print(json.dumps(dict(loaded='matplotlib' in sys.modules,
                      importers=sorted(importers))))
"""


def test_import_loads_no_matplotlib():
    """In a fresh process, ``import sharedbasis_mm`` (this checkout) leaves
    matplotlib unimported: plotting imports it where it draws."""
    out = python(IMPORT_WITHOUT_MMDET_PLOTS, ROOT, checkout=True)
    report = json.loads(out.strip().splitlines()[-1])
    assert report == dict(loaded=False, importers=[])


HIGHER_THAN_LAYERS = {('sharedbasis_mm', folder)
                      for folder in ('backbones', 'attention', 'hooks',
                                     'evaluation', 'analysis', 'converters')}


def imported_modules(path: str, root: str = ROOT) -> List[str]:
    """The absolute names of the modules that the source file ``path``
    under the folder ``root`` of the top package imports, anywhere in it,
    relative imports resolved."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    package = osp.relpath(osp.dirname(path), root).split(os.sep)
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level \
                else []
            name = '.'.join(base + ([node.module] if node.module else []))
            names += [name] + [f'{name}.{alias.name}' for alias in node.names]
    return names


def test_imported_modules_resolves_relative_imports(tmp_path):
    folder = tmp_path / 'sharedbasis_mm' / 'layers'
    folder.mkdir(parents=True)
    (folder / 'fusion.py').write_text('from ..backbones import ResNet\n'
                                      'from . import tied\n'
                                      'def f():\n'
                                      '    import sharedbasis_mm.hooks\n')
    assert imported_modules(str(folder / 'fusion.py'), root=str(tmp_path)) == [
        'sharedbasis_mm.backbones', 'sharedbasis_mm.backbones.ResNet',
        'sharedbasis_mm.layers', 'sharedbasis_mm.layers.tied',
        'sharedbasis_mm.hooks'
    ]


def test_layers_import_no_higher_layer():
    """Nothing under sharedbasis_mm/layers imports the backbones, attention,
    hooks, evaluation, analysis or converters (the arrows point from
    layers to them)."""
    paths = sorted(glob.glob(osp.join(ROOT, 'sharedbasis_mm', 'layers',
                                      '**', '*.py'), recursive=True))
    assert osp.join(ROOT, 'sharedbasis_mm', 'layers', '__init__.py') in paths
    offending = {}
    for path in paths:
        bad = [
            name for name in imported_modules(path)
            if tuple(name.split('.')[:2]) in HIGHER_THAN_LAYERS
        ]
        if bad:
            offending[osp.relpath(path, ROOT)] = bad
    assert offending == {}


@pytest.fixture(scope='module')
def installed_mim(tmp_path_factory):
    """``.mim`` of the installed package, where mmengine and mim look."""
    out = python(
        'import sharedbasis_mm\n'
        'from mmengine.utils import get_installed_path\n'
        "print(get_installed_path('sharedbasis_mm'))",
        tmp_path_factory.mktemp('outside'))
    mim = osp.join(out.strip().splitlines()[-1], '.mim')
    assert osp.isdir(mim) and sorted(os.listdir(mim)) == [
        'configs', 'model-index.yml', 'tools'], (
        f'no {mim} holding configs, model-index.yml and tools: install '
        'the package with make install (or pip install -e . and the link '
        'of tools/install_env.sh)')
    if not osp.samefile(osp.join(mim, 'configs'), osp.join(ROOT, 'configs')):
        pytest.fail(f'the installed sharedbasis_mm ({mim}) is not this '
                    f'checkout ({ROOT}): run make install here')
    return mim


def test_installed_package_links_configs_tools_and_model_index(installed_mim):
    for name in ('configs', 'tools', 'model-index.yml'):
        assert osp.samefile(osp.join(installed_mim, name),
                            osp.join(ROOT, name))


def test_config_loads_as_package_path_from_outside_the_checkout(
        installed_mim, tmp_path):
    out = python(
        'import sharedbasis_mm\n'
        'from mmengine.hub import get_config\n'
        "cfg = get_config('sharedbasis_mm::shared_basis/"
        "resnet50-shared_8xb32_in1k.py')\n"
        'print(cfg.model.backbone.type, cfg.model.backbone.basis_cfg.share)',
        tmp_path)
    assert out.split()[-2:] == ['SharedBasisResNet', 'conv2']
    # another project's config inherits ours, and builds with the
    # parameters of our model index
    (tmp_path / 'my_detector.py').write_text(
        "_base_ = 'sharedbasis_mm::detection/shared_basis/"
        "faster-rcnn_r50-shared_fpn_4xb2-1x_coco.py'\n"
        'model = dict(backbone=dict(init_cfg=None))\n')
    out = python(
        'import sharedbasis_mm\n'
        'from mmengine.config import Config\n'
        'from mmdet.registry import MODELS\n'
        'from mmdet.utils import register_all_modules\n'
        'register_all_modules()\n'
        "model = MODELS.build(Config.fromfile('my_detector.py').model)\n"
        'print(sum(p.numel() for p in model.parameters()))', tmp_path)
    with open(osp.join(ROOT, 'configs/detection/shared_basis/metafile.yml')) as f:
        listed = {
            m['Name']: m['Metadata']['Parameters']
            for m in yaml.safe_load(f)['Models']
        }
    assert int(out.split()[-1]) == listed[
        'faster-rcnn_r50-shared_fpn_4xb2-1x_coco']


def test_wheel_carries_copies_of_configs_tools_and_model_index(tmp_path):
    result = run([
        sys.executable, '-m', 'pip', 'wheel', '--no-deps',
        '--no-build-isolation', '-q', ROOT, '-w',
        str(tmp_path)
    ], tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    (wheel, ) = tmp_path.glob('sharedbasis_mm-*.whl')
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for name in ('configs/shared_basis/resnet50-shared_8xb32_in1k.py',
                     'configs/detection/_base_/default_runtime.py',
                     'tools/train.py', 'tools/tool_utils/__init__.py',
                     'model-index.yml'):
            info = archive.getinfo(f'sharedbasis_mm/.mim/{name}')
            assert info.file_size == osp.getsize(osp.join(ROOT, name))
            with open(osp.join(ROOT, name), 'rb') as f:
                assert archive.read(info) == f.read()
    assert not any('__pycache__' in name for name in names)


mim = pytest.mark.skipif(
    shutil.which('mim', path=BIN) is None,
    reason='openmim is not installed (tools/install_env.sh installs it when '
    'it changes no installed package)')


@mim
def test_mim_search_lists_the_models(installed_mim, tmp_path):
    result = run([osp.join(BIN, 'mim'), 'search', 'sharedbasis_mm'],
                 tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    for name in ('resnet50-shared_8xb32_in1k', 'tiedresnet50_8xb32_in1k',
                 'faster-rcnn_r50-shared_fpn_4xb2-1x_coco'):
        assert name in result.stdout


@mim
def test_mim_train_and_test_run_on_generated_data(installed_mim, tmp_path):
    data = tmp_path / 'data'
    result = run([
        sys.executable,
        osp.join(ROOT, 'tools', 'dataset_converters',
                 'make_synthetic_coco.py'),
        str(data), '--train', '4', '--val', '2', '--image-size', '64', '64',
        '--workers', '1'
    ], tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    ann = str(data / 'annotations' / 'instances_val.json')
    options = [
        '--cfg-options', 'train_cfg.max_epochs=1',
        'train_dataloader.batch_size=2',
        f'train_dataloader.dataset.data_root={data}/',
        f'val_dataloader.dataset.data_root={data}/',
        f'test_dataloader.dataset.data_root={data}/',
        f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}'
    ]
    work_dir = tmp_path / 'work'
    config = osp.basename(DEMO_CONFIG)  # found in the package's configs
    result = run([
        osp.join(BIN, 'mim'), 'train', 'sharedbasis_mm', config,
        '--work-dir',
        str(work_dir)
    ] + options, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert 'Epoch(train) [1][2/2]' in result.stdout
    checkpoint = work_dir / 'epoch_1.pth'
    assert checkpoint.is_file()
    result = run([
        osp.join(BIN, 'mim'), 'test', 'sharedbasis_mm', config,
        '--checkpoint',
        str(checkpoint), '--work-dir',
        str(work_dir)
    ] + options, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert 'coco/bbox_mAP' in result.stdout
