"""Fuse a trained shared-basis or tied model into plain layers for deployment.

Usage:
    python tools/deployment/fuse_model.py CONFIG CHECKPOINT [--out-dir DIR]
        [--input-shape N C H W] [--onnx]

Builds the model of CONFIG, loads CHECKPOINT and fuses its backbone with
:func:`sharedbasis_mm.layers.fuse_model`: every shared-basis convolution
becomes one plain convolution, every tied layer (TBC, TFC, the tied 3 x 3
stage of TiedResNet) its deploy form and every BatchNorm folds into the
convolution before it. It then checks, on a random batch, that the fused
model's features (``model.extract_feat``) equal the original's in eval mode,
and writes to DIR:

- ``NAME_fused.pth``: the fused model's checkpoint;
- ``NAME_deploy.py``: CONFIG with ``model.backbone.deploy=True`` (which
  builds the fused structure) and ``load_from`` the fused checkpoint;
- with ``--onnx``, ``NAME_backbone.onnx``: the fused backbone, checked
  against PyTorch with onnxruntime when it is installed.

The deploy config is rebuilt and its checkpoint loaded to check that they
reproduce the fused model. Only the backbone is fused (the part that
``deploy=True`` rebuilds); the neck and the head are kept as they are.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/
import tool_utils  # noqa: E402,F401,I001 (first: see tools/tool_utils)
import argparse
import copy
import inspect
import os
from typing import List, Optional

import torch
import torch.nn as nn
from mmengine.config import Config, DictAction
from mmengine.runner import save_checkpoint

import sharedbasis_mm  # noqa: F401
from sharedbasis_mm.analysis import build_model_from_config
from sharedbasis_mm.layers import fuse_model
from sharedbasis_mm.utils import load_model_checkpoint

from tool_utils import DefaultsHelpFormatter, float_at_least, int_at_least
from tool_utils.deployment import (export_onnx, flatten_tensors,
                                   max_abs_difference, run_onnx)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter,
        description=__doc__.split('\n')[0])
    parser.add_argument('config', help='the model\'s config file')
    parser.add_argument('checkpoint', help='its trained checkpoint')
    parser.add_argument(
        '--out-dir',
        default=osp.join('work_dirs', 'fused'),
        help='where the fused checkpoint, config and ONNX file go')
    parser.add_argument(
        '--input-shape',
        nargs=4,
        type=int_at_least(1),
        default=[2, 3, 224, 224],
        metavar=('N', 'C', 'H', 'W'),
        help='the random batch of the checks (default: 2 3 224 224)')
    parser.add_argument(
        '--atol',
        type=float_at_least(0),
        default=1e-4,
        help='fused and original outputs must agree within atol + rtol * '
        'max|output| (default: 1e-4)')
    parser.add_argument(
        '--rtol',
        type=float_at_least(0),
        default=1e-4, help='see --atol (default: 1e-4)')
    parser.add_argument(
        '--onnx', action='store_true', help='also export the fused backbone')
    parser.add_argument(
        '--seed',
        type=int_at_least(0),
        default=0,
        help='seed of the random batch')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value')
    return parser.parse_args(argv)


def check_outputs(name: str, outputs: List[torch.Tensor],
                  references: List[torch.Tensor], atol: float,
                  rtol: float) -> None:
    """Print the difference; exit if it exceeds ``atol + rtol * scale``."""
    difference = max_abs_difference(outputs, references)
    scale = max(r.abs().max().item() for r in references)
    print(f'{name}: max |difference| = {difference:.3g} '
          f'(outputs up to {scale:.3g})')
    if difference > atol + rtol * scale:
        raise SystemExit(f'fuse_model: {name} differ by {difference:.3g}, '
                         f'more than atol + rtol * {scale:.3g} = '
                         f'{atol + rtol * scale:.3g}')


def features(model: nn.Module, inputs: torch.Tensor) -> List[torch.Tensor]:
    """The model's backbone + neck features, as a flat list."""
    model.eval()
    with torch.no_grad():
        return flatten_tensors(model.extract_feat(inputs))


def deploy_config(cfg: Config, checkpoint: str) -> Config:
    """``cfg`` building the fused backbone and loading ``checkpoint``."""
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone.deploy = True
    cfg.model.backbone.init_cfg = None
    cfg.load_from = checkpoint
    return cfg


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if 'backbone' not in cfg.model:
        raise SystemExit(f'fuse_model: the model of {args.config} has no '
                         f'backbone to fuse')
    model = build_model_from_config(cfg)
    backbone_type = type(model.backbone)
    if 'deploy' not in inspect.signature(backbone_type).parameters:
        raise SystemExit(
            f'fuse_model: backbone {backbone_type.__name__} has no deploy '
            f'argument to rebuild a fused checkpoint; expected a shared-basis '
            f'or tied backbone such as SharedBasisResNet, '
            f'SharedBasisMobileNetV2 or TiedResNet')
    try:
        load_model_checkpoint(model, args.checkpoint)
    except (OSError, ValueError, RuntimeError) as error:
        raise SystemExit(f'fuse_model: {error}')
    torch.manual_seed(args.seed)
    inputs = torch.randn(*args.input_shape)
    reference = features(model, inputs)

    fused = copy.deepcopy(model)
    fuse_model(fused.backbone)
    fused_outputs = features(fused, inputs)
    check_outputs('fused vs original', fused_outputs, reference, args.atol,
                  args.rtol)

    os.makedirs(args.out_dir, exist_ok=True)
    name = osp.splitext(osp.basename(args.config))[0]
    checkpoint_path = osp.abspath(osp.join(args.out_dir, f'{name}_fused.pth'))
    save_checkpoint(
        dict(
            state_dict=fused.state_dict(),
            meta=dict(
                fused_from=osp.abspath(args.checkpoint),
                config=osp.abspath(args.config))), checkpoint_path)
    config_path = osp.abspath(osp.join(args.out_dir, f'{name}_deploy.py'))
    deploy_config(cfg, checkpoint_path).dump(config_path)

    deployed = build_model_from_config(Config.fromfile(config_path))
    load_model_checkpoint(deployed, checkpoint_path)
    check_outputs('deploy config + checkpoint vs fused',
                  features(deployed, inputs), fused_outputs, args.atol,
                  args.rtol)
    written = [checkpoint_path, config_path]

    if args.onnx:
        onnx_path = osp.abspath(
            osp.join(args.out_dir, f'{name}_backbone.onnx'))
        export_onnx(fused.backbone, inputs, onnx_path)
        written.append(onnx_path)
        try:
            onnx_outputs = run_onnx(onnx_path, inputs)
        except ImportError as error:
            print(f'ONNX check skipped: onnxruntime cannot be imported '
                  f'({error})')
        else:
            with torch.no_grad():
                backbone_outputs = flatten_tensors(fused.backbone(inputs))
            check_outputs('ONNX Runtime vs PyTorch (fused backbone)',
                          onnx_outputs, backbone_outputs, args.atol,
                          args.rtol)
    print('written:\n  ' + '\n  '.join(written))


if __name__ == '__main__':
    main()
