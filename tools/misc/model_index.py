"""Write the model index: configs/**/metafile.yml and model-index.yml.

Every config with a ``paper_reference`` gets an entry in the ``metafile.yml``
of its folder, in the format of mmdet's and mmpretrain's metafiles (read by
``mim search`` and by mmengine's ``package::config`` paths); model-index.yml
imports every metafile. Measured from the config: ``Metadata`` (training
data and techniques, epochs, architecture, parameters, and FLOPs at the
paper's input size where the paper gives FLOPs). Written by hand in the
metafile and kept as they are: ``Results`` (the paper's figures, named by
``Results From``) and ``Converted From`` (the authors' checkpoint and how to
convert it). ``--check`` writes nothing and fails when a file is not what
this tool would write. ``--flops-for`` counts the FLOPs of the configs named
and keeps the others' (counting every model's takes long).
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/
import tool_utils  # noqa: E402,F401,I001 (first: see tools/tool_utils)

import argparse
import fnmatch
import os
from typing import Callable, Dict, List, Optional

import torch
import yaml
from mmengine.config import Config
from mmengine.logging import print_log

from sharedbasis_mm.analysis import (build_model_from_config,
                                     count_flops, count_parameters)

from tool_utils import ROOT, DefaultsHelpFormatter
from tool_utils.config_parsing import package_metafiles_read_once

MODEL_INDEX = 'model-index.yml'
METAFILE = 'metafile.yml'
# The papers, by the name that starts the ``source`` of a paper_reference.
PAPERS = {
    'Learning Deeply Shared Filter Bases':
    dict(
        Title='Learning Deeply Shared Filter Bases for Efficient ConvNets',
        URL='https://openreview.net/forum?id=L-88RyVtXGr'),
    'Tied Block Convolution':
    dict(
        Title='Tied Block Convolution: Leaner and Better CNNs with Shared '
        'Thinner Filters',
        URL='https://arxiv.org/abs/2009.12021'),
}
# mmpretrain's and mmdet's names of the data sets in their metafiles
DATASETS = {
    'ImageNet': 'ImageNet-1k',
    'CIFAR10': 'CIFAR-10',
    'CIFAR100': 'CIFAR-100',
    'CocoDataset': 'COCO',
    'CityscapesDataset': 'Cityscapes',
}
# what a metafile's entry keeps from the file as it is: the paper's and the
# authors' figures, which no config holds
KEPT_KEYS = ('Results', 'Results From', 'Converted From')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=DefaultsHelpFormatter)
    parser.add_argument(
        '--root',
        default=ROOT,
        help='the repository: its configs/ is searched and its '
        'model-index.yml written')
    parser.add_argument(
        '--check',
        action='store_true',
        help='write nothing; exit 1 when a metafile or model-index.yml '
        'differs from what would be written')
    parser.add_argument(
        '--no-flops',
        action='store_true',
        help='count parameters only and keep the FLOPs of the metafiles '
        '(fast; --check then compares parameters only)')
    parser.add_argument(
        '--flops-for',
        nargs='+',
        metavar='CONFIG',
        help='count the FLOPs of these configs only (paths from the '
        'repository root, shell patterns allowed, e.g. '
        "'configs/shared_basis/mobilenet*'); keep the others' from the "
        'metafiles')
    args = parser.parse_args()
    if args.flops_for and args.no_flops:
        parser.error('--flops-for counts FLOPs, --no-flops counts none: '
                     'give one of them')
    return args


def flops_selection(args: argparse.Namespace) -> Callable[[str], bool]:
    """Whether the FLOPs of a config (by its path from the root) are
    counted; every pattern of ``--flops-for`` must match a config file."""
    if not args.flops_for:
        return lambda relpath: not args.no_flops
    relpaths = [
        osp.relpath(path, args.root).replace(os.sep, '/')
        for path in find_config_files(osp.join(args.root, 'configs'))
    ]
    for pattern in args.flops_for:
        if not fnmatch.filter(relpaths, pattern):
            sys.exit(f'model_index: --flops-for {pattern!r} matches no '
                     'config file; expected paths from the repository root '
                     'such as configs/shared_basis/*.py')
    return lambda relpath: any(
        fnmatch.fnmatch(relpath, pattern) for pattern in args.flops_for)


def paper_of(source: str, config: str) -> Dict[str, str]:
    """The title and URL of the paper a ``paper_reference.source`` names."""
    for name, paper in PAPERS.items():
        if source.startswith(name):
            return paper
    raise ValueError(f'{config}: paper_reference.source={source!r} names '
                     f'none of the papers {sorted(PAPERS)}')


def find_indexed_configs(configs_dir: str) -> Dict[str, Config]:
    """The configs with a ``paper_reference`` under ``configs_dir``, by
    path, in folder order (parsing a config takes seconds: each is parsed
    once)."""
    configs = {}
    with package_metafiles_read_once():
        for path in find_config_files(configs_dir):
            cfg = Config.fromfile(path)
            if cfg.get('paper_reference') is not None:
                configs[path] = cfg
    return configs


def find_config_files(configs_dir: str) -> List[str]:
    """The config files under ``configs_dir`` (not ``_base_``), in folder
    order."""
    paths = []
    for folder, dirs, files in sorted(os.walk(configs_dir)):
        dirs.sort()
        if '_base_' not in folder.split(os.sep):
            paths += [
                osp.join(folder, name) for name in sorted(files)
                if name.endswith('.py')
            ]
    return paths


def training_techniques(cfg: Config) -> List[str]:
    techniques = []
    optimizer = cfg.get('optim_wrapper', {}).get('optimizer', {})
    if optimizer.get('type') == 'SGD' and optimizer.get('momentum'):
        techniques.append('SGD with Momentum')
    elif optimizer.get('type'):
        techniques.append(optimizer['type'])
    if optimizer.get('weight_decay'):
        techniques.append('Weight Decay')
    hooks = [hook.get('type') for hook in cfg.get('custom_hooks', [])]
    if 'OrthogonalityLossHook' in hooks:
        techniques.append('Orthogonality Regularization')
    return techniques


def architecture(model_cfg: dict) -> List[str]:
    """The model's type, then its backbone's (and its plugins'), necks' and
    heads' types."""
    names = [model_cfg['type']]
    backbone = model_cfg.get('backbone', {})
    names.append(backbone['type'])
    for plugin in backbone.get('plugins') or []:
        names.append(plugin['cfg']['type'])
    for key in ('neck', 'rpn_head', 'roi_head', 'bbox_head', 'head'):
        parts = model_cfg.get(key) or []
        for part in parts if isinstance(parts, list) else [parts]:
            names.append(part['type'])
    return list(dict.fromkeys(names))


def model_metadata(cfg: Config, with_flops: bool) -> Dict:
    """What the index says of the model of a config: measured from it."""
    dataset = cfg.train_dataloader.dataset
    while 'dataset' in dataset:  # wrappers: RepeatDataset, ...
        dataset = dataset.dataset
    train_cfg = cfg.get('train_cfg', {})
    metadata = {
        'Training Data': DATASETS.get(dataset.type, dataset.type),
        'Training Techniques': training_techniques(cfg),
    }
    if train_cfg.get('max_epochs'):
        metadata['Epochs'] = train_cfg['max_epochs']
    elif train_cfg.get('max_iters'):
        metadata['Iterations'] = train_cfg['max_iters']
    reference = cfg.paper_reference
    with_flops = with_flops and bool(reference.get('flops')) and reference.get(
        'part', 'model') == 'model'
    # without FLOPs, the parameters are counted on the meta device: the
    # same modules, built in a fraction of the time (on the CPU for a model
    # whose construction reads tensor values, as mmpretrain's DenseNet)
    try:
        with torch.device('cpu' if with_flops else 'meta'):
            model = build_model_from_config(cfg)
    except RuntimeError as error:
        if 'meta tensors' not in str(error):
            raise
        model = build_model_from_config(cfg)
    metadata['Parameters'] = count_parameters(model)
    if with_flops:
        metadata['FLOPs'] = count_flops(model,
                                        tuple(reference['input_shape']))
    metadata['Architecture'] = architecture(cfg.model)
    return metadata


def collection_name(paper_title: str, folder: str) -> str:
    short = next(name for name, paper in PAPERS.items()
                 if paper['Title'] == paper_title)
    return f'{short} ({folder})'


def build_metafile(root: str, folder: str, configs: Dict[str, Config],
                   old: Optional[Dict],
                   counts_flops: Callable[[str], bool]) -> Dict:
    """The metafile of a config folder: its collections (one per paper)
    and one model per config, keeping ``KEPT_KEYS`` of ``old``, and the
    FLOPs of ``old`` for the configs whose FLOPs are not counted."""
    old_models = {m['Name']: m for m in (old or {}).get('Models', [])}
    collections, models = {}, []
    for path, cfg in configs.items():
        relpath = osp.relpath(path, root)
        paper = paper_of(cfg.paper_reference.source, relpath)
        name = collection_name(paper['Title'], folder)
        collections.setdefault(name, dict(Name=name, Paper=paper))
        model_name = osp.splitext(osp.basename(path))[0]
        with_flops = counts_flops(relpath.replace(os.sep, '/'))
        model = {
            'Name': model_name,
            'In Collection': name,
            'Config': relpath.replace(os.sep, '/'),
            'Metadata': model_metadata(cfg, with_flops),
        }
        kept = old_models.get(model_name, {})
        if not with_flops and 'FLOPs' in kept.get('Metadata', {}):
            model['Metadata']['FLOPs'] = kept['Metadata']['FLOPs']
            # keep the key order of a run with FLOPs
            model['Metadata']['Architecture'] = model['Metadata'].pop(
                'Architecture')
        for key in KEPT_KEYS:
            if key in kept:
                model[key] = kept[key]
        if 'Results' not in model:
            print_log(
                f'{relpath}: no Results in {folder}/{METAFILE}; add the '
                "paper's figures by hand (see docs/installation.md)",
                logger='current')
        models.append(model)
    return {'Collections': list(collections.values()), 'Models': models}


def dump(data: Dict) -> str:
    return yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True, width=79)


def main() -> None:
    args = parse_args()
    configs_dir = osp.join(args.root, 'configs')
    counts_flops = flops_selection(args)
    by_folder: Dict[str, Dict[str, Config]] = {}
    for path, cfg in find_indexed_configs(configs_dir).items():
        folder = osp.relpath(osp.dirname(path), configs_dir)
        by_folder.setdefault(folder.replace(os.sep, '/'), {})[path] = cfg
    if not by_folder:
        sys.exit(f'model_index: no config under {configs_dir} has a '
                 'paper_reference; the index lists the configs that '
                 "reproduce a paper's table")
    files = {}
    for folder, configs in by_folder.items():
        path = osp.join(configs_dir, folder, METAFILE)
        old = None
        if osp.isfile(path):
            with open(path) as f:
                old = yaml.safe_load(f)
        files[path] = dump(
            build_metafile(args.root, folder, configs, old, counts_flops))
    files[osp.join(args.root, MODEL_INDEX)] = dump({
        'Import': [f'configs/{folder}/{METAFILE}' for folder in by_folder]
    })
    stale = []
    for path, text in files.items():
        current = open(path).read() if osp.isfile(path) else None
        if current == text:
            continue
        stale.append(osp.relpath(path, args.root))
        if not args.check:
            with open(path, 'w') as f:
                f.write(text)
    if args.check and stale:
        sys.exit('model_index: not up to date (run python '
                 f'tools/misc/model_index.py): {", ".join(stale)}')
    print_log(
        f'{"checked" if args.check else "written"}: '
        f'{len(files) - 1} metafiles, '
        f'{sum(len(c) for c in by_folder.values())} models'
        + (f'; updated {", ".join(stale)}' if stale and not args.check
           else ''),
        logger='current')


if __name__ == '__main__':
    main()
