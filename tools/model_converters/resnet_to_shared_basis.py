"""Convert a plain pretrained ResNet into the shared-basis model of a config.

Usage:
    python tools/model_converters/resnet_to_shared_basis.py SRC DST \\
        --config CONFIG [--backbone] [--calibrate IMAGES]

SRC is a plain ResNet checkpoint: mmpretrain's (an ImageClassifier, with or
without ``state_dict`` wrapping), mmdet's (a detector: its ``backbone.``
keys) or torchvision's (``conv1``, ``layer1.0.conv1``, ``fc``, ...: mapped
to ``backbone.`` and ``head.fc``). The layers of each residual group that
CONFIG's model shares are decomposed into shared bases, unique filters and
coefficients (``sharedbasis_mm.converters.convert_plain_state_dict``); the
rest is copied. DST loads with ``strict=True`` into CONFIG's model, or with
``--backbone`` into its backbone (for a detection config's ``init_cfg``).
The relative error and the energy kept of each converted convolution are
printed and written to ``DST`` with ``.json`` for its extension.

``--calibrate IMAGES`` sets the running statistics of the norms the
conversion set to those of the images of the folder IMAGES, keeping the
eval-mode function, so that fine-tuning starts from it.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/
import tool_utils  # noqa: E402,F401,I001 (first: see tools/tool_utils)
import argparse
import glob
import json
import os
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import mmcv
import torch
from mmengine.config import Config

from sharedbasis_mm.analysis import build_model_from_config
from sharedbasis_mm.converters import (PlainCheckpointError, calibrate_norms,
                                       convert_plain_state_dict)
from sharedbasis_mm.utils import load_checkpoint_file

from tool_utils import DefaultsHelpFormatter, int_at_least

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter,
        description=__doc__.split('\n')[0])
    parser.add_argument('src', help='plain ResNet checkpoint (mmpretrain, '
                        'mmdet or torchvision)')
    parser.add_argument('dst', help='shared-basis checkpoint to write')
    parser.add_argument(
        '--config', required=True, help='config of the shared-basis model')
    parser.add_argument(
        '--backbone',
        action='store_true',
        help='convert the backbone only; DST loads into the backbone')
    parser.add_argument(
        '--calibrate',
        metavar='IMAGES',
        help='folder of images whose statistics the converted norms take')
    parser.add_argument(
        '--calibrate-size',
        type=int_at_least(8),
        default=224,
        help='side of the square the calibration images are resized to')
    parser.add_argument(
        '--max-iter',
        type=int_at_least(0),
        default=1000,
        help='refinement steps of each shared basis at most')
    return parser.parse_args(argv)


def plain_state_dict(checkpoint: dict) -> Tuple[str, Dict]:
    """The layout of a plain checkpoint and its state dict with model keys
    (``backbone.``, ``head.``, ...): torchvision's keys are mapped."""
    state = checkpoint.get('state_dict', checkpoint)
    state = OrderedDict((re.sub(r'^module\.', '', key), value)
                        for key, value in state.items())
    if any(key.startswith('backbone.') for key in state):
        detector = any(
            key.startswith(('neck.', 'rpn_head.', 'roi_head.', 'bbox_head.'))
            for key in state)
        return 'mmdet' if detector else 'mmpretrain', state
    if 'conv1.weight' in state and 'layer1.0.conv1.weight' in state:
        return 'torchvision', OrderedDict(
            (f'head.fc.{key[3:]}' if key.startswith('fc.') else
             f'backbone.{key}', value) for key, value in state.items())
    raise PlainCheckpointError(
        f'expected a plain ResNet checkpoint: keys starting with backbone. '
        f'(mmpretrain, mmdet) or conv1/layer1.0.conv1 (torchvision); got '
        f'{", ".join(list(state)[:4])}, ...')


def calibration_images(folder: str, size: int) -> List[torch.Tensor]:
    """The images of ``folder`` as ``(3, size, size)`` uint8 BGR tensors,
    as mmengine's pipelines load them (the model's data preprocessor
    converts and normalizes them)."""
    paths = sorted(
        path for path in glob.glob(osp.join(folder, '*'))
        if path.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
        raise SystemExit(f'resnet_to_shared_basis: --calibrate {folder!r}: '
                         f'no {"/".join(IMAGE_EXTENSIONS)} images found')
    return [
        torch.from_numpy(
            mmcv.imresize(mmcv.imread(path), (size, size)).copy()).permute(
                2, 0, 1) for path in paths
    ]


def main(argv: Optional[List[str]] = None) -> Dict:
    args = parse_args(argv)
    name = 'resnet_to_shared_basis'
    cfg = Config.fromfile(args.config)
    model = build_model_from_config(cfg).eval()
    backbone_cfg = cfg.model.get('backbone', cfg.model)
    plain_name = (f'a plain ResNet of depth {backbone_cfg.get("depth")} '
                  f'(the structure of the {backbone_cfg.get("type")} of '
                  f'{args.config})')
    try:
        layout, state = plain_state_dict(load_checkpoint_file(args.src))
        target = model
        if args.backbone:
            target = model.backbone
            state = OrderedDict((key[len('backbone.'):], value)
                                for key, value in state.items()
                                if key.startswith('backbone.'))
        converted, report = convert_plain_state_dict(
            target,
            state,
            what=f'{args.src} is not {plain_name}',
            max_iter=args.max_iter)
    except PlainCheckpointError as error:
        hint = ('' if args.backbone else
                ' (with --backbone only the backbone is converted)')
        raise SystemExit(f'{name}: {error}{hint}')
    except (OSError, ValueError) as error:
        raise SystemExit(f'{name}: {error}')
    target.load_state_dict(converted, strict=True)
    if args.calibrate:
        images = calibration_images(args.calibrate, args.calibrate_size)

        def run() -> None:
            for start in range(0, len(images), 16):
                data = model.data_preprocessor(
                    dict(inputs=images[start:start + 16],
                         data_samples=None), False)
                model.backbone(data['inputs'])

        calibrate_norms(target, report['norms'], run)
        converted = target.state_dict()
        report['calibration'] = dict(
            folder=args.calibrate, images=len(images), size=args.calibrate_size)
    report.update(source=args.src, layout=layout, config=args.config,
                  backbone_only=args.backbone)
    for conv in report['convs']:
        best = ('' if conv['rank_energy'] is None else
                f', best rank {conv["shared_rank"] + conv["unique_rank"]} '
                f'alone keeps {conv["rank_energy"]:.4f}')
        print(f'{conv["name"]}: relative error {conv["relative_error"]:.4f}, '
              f'energy kept {conv["energy"]:.4f}{best}')
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(
        dict(
            state_dict=converted,
            meta=dict(source=args.src, layout=layout, config=args.config)),
        args.dst)
    report_path = osp.splitext(args.dst)[0] + '.json'
    with open(report_path, 'w') as file:
        json.dump(report, file, indent=1)
    print(f'{layout} checkpoint {args.src} converted: {len(report["convs"])} '
          f'convolutions decomposed, written to {args.dst} (errors in '
          f'{report_path})')
    return report


if __name__ == '__main__':
    main()
