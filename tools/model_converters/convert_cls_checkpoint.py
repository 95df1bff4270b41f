"""Convert an mmpretrain classifier checkpoint into a backbone checkpoint.

Usage:
    python tools/model_converters/convert_cls_checkpoint.py \\
        CLASSIFIER.pth BACKBONE.pth

The output holds the classifier's ``backbone.*`` weights without the prefix,
so that a detector config loads it with
``backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='BACKBONE.pth'))``.
Each shared filter basis stays one key, of the residual group owning it
(e.g. ``layer1.shared_basis``).
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/
import tool_utils  # noqa: E402,F401,I001 (first: see tools/tool_utils)
import argparse
import os
from typing import List, Optional

import torch

from sharedbasis_mm.utils import classifier_to_backbone, load_checkpoint_file

from tool_utils import DefaultsHelpFormatter


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter,
        description=__doc__.split('\n')[0])
    parser.add_argument('src', help='mmpretrain classifier checkpoint')
    parser.add_argument('dst', help='backbone checkpoint to write')
    args = parser.parse_args(argv)
    try:
        checkpoint = load_checkpoint_file(args.src)
    except (OSError, ValueError) as error:
        raise SystemExit(f'convert_cls_checkpoint: {error}')
    try:
        backbone = classifier_to_backbone(
            checkpoint.get('state_dict', checkpoint))
    except ValueError as error:
        raise SystemExit(f'convert_cls_checkpoint: {args.src}: {error}')
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(dict(state_dict=backbone, meta=dict(source=args.src)),
               args.dst)
    print(f'{len(backbone)} backbone tensors written to {args.dst}')


if __name__ == '__main__':
    main()
