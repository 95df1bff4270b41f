"""The model index (model-index.yml, configs/**/metafile.yml) against the
configs it describes."""
import glob
import os
import os.path as osp
import shutil
import sys

import pytest
import yaml
from mmengine.config import Config
from mmengine.config.utils import _get_cfg_metainfo

from sharedbasis_mm.analysis import build_model_from_config, count_flops
from tool_loading import TOOLS, load_tool

ROOT = osp.dirname(TOOLS)
model_index = load_tool('model_index')
pytestmark = pytest.mark.usefixtures('metafiles_read_once')


def load_yaml(path):
    with open(osp.join(ROOT, path)) as f:
        return yaml.safe_load(f)


METAFILES = sorted(
    osp.relpath(path, ROOT).replace(os.sep, '/')
    for path in glob.glob(osp.join(ROOT, 'configs', '**', 'metafile.yml'),
                          recursive=True))
ENTRIES = [(metafile, model) for metafile in METAFILES
           for model in load_yaml(metafile)['Models']]


@pytest.fixture(scope='module')
def indexed():
    """Every config with a paper_reference, parsed once, by its path
    relative to the repository."""
    return {
        osp.relpath(path, ROOT).replace(os.sep, '/'): cfg
        for path, cfg in model_index.find_indexed_configs(
            osp.join(ROOT, 'configs')).items()
    }


def test_model_index_imports_every_metafile():
    assert METAFILES
    assert sorted(load_yaml('model-index.yml')['Import']) == METAFILES


def test_every_config_with_a_paper_reference_has_one_entry(indexed):
    listed = [model['Config'] for _, model in ENTRIES]
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(indexed)


@pytest.mark.parametrize(
    'metafile,model', ENTRIES, ids=[model['Name'] for _, model in ENTRIES])
def test_entry_matches_its_config(metafile, model, indexed):
    config = osp.join(ROOT, model['Config'])
    # a config that exists and names its paper
    assert model['Config'] in indexed, (
        f'{metafile}: no config {model["Config"]} with a paper_reference')
    assert osp.dirname(model['Config']) == osp.dirname(metafile)
    assert model['Name'] == osp.splitext(osp.basename(config))[0]
    cfg = indexed[model['Config']]
    # builds (on the meta device), and has the listed parameters (FLOPs:
    # tools/misc/model_index.py --check, which takes minutes)
    measured = model_index.model_metadata(cfg, with_flops=False)
    listed = dict(model['Metadata'])
    listed.pop('FLOPs', None)
    assert measured == listed
    collections = {c['Name']: c for c in load_yaml(metafile)['Collections']}
    paper = model_index.paper_of(cfg.paper_reference.source, config)
    assert collections[model['In Collection']]['Paper'] == paper
    for result in model.get('Results', []):
        assert set(result) == {'Task', 'Dataset', 'Metrics'}
        assert result['Dataset'] == model['Metadata']['Training Data']
        assert result['Metrics'] and all(
            isinstance(value, float) for value in result['Metrics'].values())
    if 'Results' in model:
        # labelled as the paper's: its title and table
        assert model['Results From'].startswith(paper['Title'] + ', Table')


def test_mmengine_finds_every_config_through_the_index(tmp_path):
    # the layout of an installed package: <package>/.mim/{configs,
    # model-index.yml}, as mmengine.hub.get_config reads it
    os.makedirs(tmp_path / '.mim')
    for name in ('configs', 'model-index.yml'):
        os.symlink(osp.join(ROOT, name), tmp_path / '.mim' / name)
    for _, model in ENTRIES:
        relpath = model['Config'].partition('/')[-1]
        assert _get_cfg_metainfo(str(tmp_path), relpath) == model


def test_modelindex_reads_the_index():
    modelindex = pytest.importorskip('modelindex')
    index = modelindex.load(osp.join(ROOT, 'model-index.yml'))
    index.build_models_with_collections()  # as mim search does
    assert sorted(m.name for m in index.models) == sorted(
        model['Name'] for _, model in ENTRIES)
    by_name = {m.name: m for m in index.models}
    for _, model in ENTRIES:
        found = by_name[model['Name']]
        assert not found.check_errors, found.check_errors
        assert found.full_model.config == model['Config']
        assert found.full_model.paper['URL'].startswith('https://')


def test_flops_for_counts_the_named_configs_and_keeps_the_others(
        tmp_path, monkeypatch):
    """``--flops-for`` recounts the FLOPs of the configs it names and keeps
    the metafile's FLOPs of the others (here deliberately wrong)."""
    shutil.copytree(
        osp.join(ROOT, 'configs', '_base_'), tmp_path / 'configs' / '_base_')
    shutil.copytree(
        osp.join(ROOT, 'configs', 'shared_basis'),
        tmp_path / 'configs' / 'shared_basis')
    metafile = tmp_path / 'configs' / 'shared_basis' / 'metafile.yml'
    meta = yaml.safe_load(metafile.read_text())
    named = 'resnet56-s16u1_1xb128_cifar10'
    kept = 'resnet32-s16u1-double_1xb128_cifar10'
    for model in meta['Models']:
        if model['Name'] in (named, kept):
            model['Metadata']['FLOPs'] = 1
    metafile.write_text(model_index.dump(meta))
    monkeypatch.setattr(sys, 'argv', [
        'model_index.py', '--root',
        str(tmp_path), '--flops-for', f'configs/shared_basis/{named}.py'
    ])
    model_index.main()
    flops = {
        model['Name']: model['Metadata'].get('FLOPs')
        for model in yaml.safe_load(metafile.read_text())['Models']
    }
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'shared_basis',
                                   f'{named}.py'))
    assert flops[named] == count_flops(
        build_model_from_config(cfg), tuple(cfg.paper_reference.input_shape))
    assert flops[kept] == 1


@pytest.mark.parametrize('args,message', [
    (['--flops-for', 'configs/nowhere/*.py'], "'configs/nowhere/*.py' matches "
     'no config'),
    (['--flops-for', 'configs/shared_basis/*.py', '--no-flops'],
     'give one of them'),
])
def test_flops_for_refuses_what_it_cannot_do(args, message, monkeypatch,
                                             capsys):
    monkeypatch.setattr(sys, 'argv', ['model_index.py', *args])
    with pytest.raises(SystemExit) as error:
        model_index.main()
    assert message in str(error.value) + capsys.readouterr().err
