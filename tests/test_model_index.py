"""The model index (model-index.yml, configs/**/metafile.yml) against the
configs it describes."""
import glob
import os
import os.path as osp

import pytest
import yaml
from mmengine.config.utils import _get_cfg_metainfo

from tool_loading import TOOLS, load_tool

ROOT = osp.dirname(TOOLS)
model_index = load_tool('model_index')


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
    assert osp.isfile(config), f'{metafile}: no config {model["Config"]}'
    assert osp.dirname(model['Config']) == osp.dirname(metafile)
    assert model['Name'] == osp.splitext(osp.basename(config))[0]
    cfg = indexed[model['Config']]
    # builds (on the meta device), and has the listed parameters (FLOPs:
    # tools/model_index.py --check, which takes minutes)
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
