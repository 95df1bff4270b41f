"""Figure 4 of Learning Deeply Shared Filter Bases: similarity of the coefficients sharing a basis.

Builds the model of an mmengine config (in its ``default_scope``, mmpretrain
if none: mmpretrain, mmdet, ... models), loads a
checkpoint, and for each shared filter basis stacks the coefficient vectors
(rows of the 1 x 1 coefficients) of every SharedBasisConv2d using it and
computes their absolute cosine similarity. Writes one heat-map PNG per basis
and ``coefficient_similarity.json`` with the mean off-diagonal similarity
of each.

Example:
    python tools/analysis_tools/analyze_coefficients.py CONFIG CHECKPOINT \\
        --out-dir DIR
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/
import tool_utils  # noqa: E402,F401,I001 (first: see tools/tool_utils)
import argparse
import json
import os
from typing import Dict, List, Optional

from mmengine.config import Config, DictAction

from sharedbasis_mm.analysis import (build_model_from_config,
                                     coefficient_similarity, mean_off_diagonal,
                                     plot_coefficient_similarity,
                                     shared_basis_coefficients)
from sharedbasis_mm.utils import load_model_checkpoint

from tool_utils import DefaultsHelpFormatter


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter,
        description='Absolute cosine similarity of the coefficients of the '
        'layers sharing each filter basis (Figure 4 of Learning Deeply Shared Filter Bases), as a '
        'heat-map per basis and its mean off-diagonal value.')
    parser.add_argument('config', help='mmengine config of the model')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out-dir',
        default='work_dirs/coefficient_similarity',
        help='where the PNGs and coefficient_similarity.json go')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Dict[str, dict]:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    model = build_model_from_config(cfg)
    try:
        load_model_checkpoint(model, args.checkpoint)
    except (OSError, ValueError, RuntimeError) as error:
        raise SystemExit(f'analyze_coefficients: {error}')
    groups = shared_basis_coefficients(model)
    if not groups:
        raise ValueError(f'the model of {args.config} has no '
                         f'SharedBasisConv2d using a shared filter basis')
    os.makedirs(args.out_dir, exist_ok=True)
    summary = {}
    for basis_name, coefficients in groups.items():
        similarity = coefficient_similarity(list(coefficients.values()))
        mean = mean_off_diagonal(similarity)
        figure = plot_coefficient_similarity(
            similarity, [c.shape[0] for c in coefficients.values()],
            title=f'{basis_name}\nmean off-diagonal |cos| = {mean:.3f}')
        path = osp.join(args.out_dir, f'{basis_name}.png')
        figure.savefig(path, dpi=150)
        summary[basis_name] = dict(
            layers=list(coefficients),
            num_vectors=similarity.shape[0],
            mean_off_diagonal=mean,
            heatmap=path)
        print(f'{basis_name}: {len(coefficients)} layers, '
              f'{similarity.shape[0]} coefficient vectors, mean '
              f'off-diagonal |cos| = {mean:.4f} -> {path}')
    json_path = osp.join(args.out_dir, 'coefficient_similarity.json')
    with open(json_path, 'w') as f:
        json.dump(summary, f, indent=2)
    print(f'summary written to {json_path}')
    return summary


if __name__ == '__main__':
    main()
