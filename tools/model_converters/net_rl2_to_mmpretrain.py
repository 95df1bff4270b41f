"""Convert a checkpoint of the authors' code into an mmpretrain checkpoint.

The authors' code of Learning Deeply Shared Filter Bases for Efficient
ConvNets is github.com/ssregibility/Net_RL2.

Usage:
    python tools/model_converters/net_rl2_to_mmpretrain.py SRC DST \\
        --config configs/shared_basis/resnet50-shared_8xb32_in1k.py \\
        [--backbone]

SRC is their file (a state dict or their ``{'net_state_dict': ...}``, with or
without DataParallel's ``module.`` prefix). DST loads with ``strict=True``
into the classifier of CONFIG; with ``--backbone`` it holds the backbone
weights only, which the detection configs load from
``work_dirs/backbones/<classification config name>.pth``.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/
import tool_utils  # noqa: E402,F401,I001 (first: see tools/tool_utils)
import argparse

from sharedbasis_mm.converters import (NetRL2ConversionError,
                                       convert_net_rl2_checkpoint)

from tool_utils import DefaultsHelpFormatter


def main() -> None:
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter,
        description=__doc__.split('\n')[0])
    parser.add_argument('src', help='checkpoint of the authors\' code')
    parser.add_argument('dst', help='mmpretrain checkpoint to write')
    parser.add_argument(
        '--config',
        required=True,
        help='classification config of the model the checkpoint is for')
    parser.add_argument(
        '--backbone',
        action='store_true',
        help='write the backbone weights only (for a detection config\'s '
        'init_cfg)')
    args = parser.parse_args()
    try:
        state_dict = convert_net_rl2_checkpoint(args.src,
                                                args.dst,
                                                args.config,
                                                backbone_only=args.backbone)
    except NetRL2ConversionError as error:
        raise SystemExit(f'{args.src}: {error}')
    print(f'{len(state_dict)} tensors written to {args.dst}')


if __name__ == '__main__':
    main()
