"""Convert an mmpretrain classifier checkpoint into a backbone checkpoint.

Usage:
    python tools/convert_cls_checkpoint.py CLASSIFIER.pth BACKBONE.pth

The output holds the classifier's ``backbone.*`` weights without the prefix,
so that a detector config loads it with
``backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='BACKBONE.pth'))``.
Shared filter bases stay shared: each user's key is written, all holding the
one tensor.
"""
import _quiet_imports  # noqa: F401,I001 (first: see the module)
import argparse
import os
import os.path as osp

import torch
from mmengine.runner import CheckpointLoader

from sharedbasis_mm.utils import DefaultsHelpFormatter, classifier_to_backbone


def main() -> None:
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter,
        description=__doc__.split('\n')[0])
    parser.add_argument('src', help='mmpretrain classifier checkpoint')
    parser.add_argument('dst', help='backbone checkpoint to write')
    args = parser.parse_args()
    checkpoint = CheckpointLoader.load_checkpoint(args.src, map_location='cpu')
    state_dict = checkpoint.get('state_dict', checkpoint)
    try:
        backbone = classifier_to_backbone(state_dict)
    except ValueError as error:
        raise SystemExit(f'{args.src}: {error}')
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(dict(state_dict=backbone, meta=dict(source=args.src)),
               args.dst)
    print(f'{len(backbone)} backbone tensors written to {args.dst}')


if __name__ == '__main__':
    main()
