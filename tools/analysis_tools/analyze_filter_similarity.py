"""Figures 1 and 9 of Tied Block Convolution: how alike a layer's filters
are, by the cosine similarity of their guided back-propagation patterns.

For each CONFIG CHECKPOINT pair the model is built (in the config's
``default_scope``), the checkpoint loaded (refused, naming the first key,
when it does not fit), and for each ``--layers`` convolution
``--num-filters`` sampled filters are compared on the images (``--images``,
or generated ones when none are given). Writes, per model, the JSON
``{layer: {"mean", "histogram", "bin_edges", "num_filters", "num_images",
...}}`` and a similarity matrix PNG per layer (``OUT_DIR/`` for one model,
``OUT_DIR/<config name>/`` for several), and
``OUT_DIR/filter_similarity_histogram.png``: one panel per layer, one curve
per model, the ``--compare`` JSON files of earlier runs included.

Example:
    python tools/analysis_tools/analyze_filter_similarity.py \
        configs/baselines/resnet50_8xb32_in1k.py resnet50.pth \
        configs/tied/tiedresnet50_8xb32_in1k.py tiedresnet50.pth \
        --layers backbone.layer1.0.conv2 backbone.layer4.0.conv2 \
        --images data/imagenet/val --num-images 100 --out-dir work_dirs/fig9
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/
import tool_utils  # noqa: E402,F401,I001 (first: see tools/tool_utils)
import argparse
import json
import os
from typing import Dict, List, Optional, Tuple

import mmcv
import torch
from mmengine.config import Config, DictAction

from sharedbasis_mm.analysis import build_model_from_config
from sharedbasis_mm.analysis.filter_similarity import (
    filter_similarity, generated_images,
    plot_similarity_histograms, plot_similarity_matrix, preprocess_images,
    similarity_summary)
from sharedbasis_mm.utils import load_model_checkpoint
from sharedbasis_mm.utils.validation import (check_file,
                                             check_int, check_positive_int,
                                             load_json_file)

from tool_utils import DefaultsHelpFormatter

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')
JSON_NAME = 'filter_similarity.json'
HISTOGRAM_NAME = 'filter_similarity_histogram.png'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter,
        description='Pairwise cosine similarity of the guided '
        'back-propagation patterns of sampled filters of named layers '
        '(Figures 1 and 9 of Tied Block Convolution).')
    parser.add_argument(
        'models', nargs='+', metavar='CONFIG CHECKPOINT',
        help='one or more pairs of an mmengine config and its checkpoint')
    parser.add_argument(
        '--layers', nargs='+', required=True,
        help='convolutions to analyse, by module name '
        '(e.g. backbone.layer1.0.conv2)')
    parser.add_argument(
        '--images', help='folder of images; generated images when not given')
    parser.add_argument('--num-images', type=int, default=16,
                        help='images to average over')
    parser.add_argument('--num-filters', type=int, default=64,
                        help='filters sampled per layer')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the sampling and generated images')
    parser.add_argument('--image-size', type=int, default=224,
                        help='images are resized to this square size')
    parser.add_argument('--bins', type=int, default=40,
                        help='histogram bins over [-1, 1]')
    parser.add_argument('--batch-size', type=int, default=8,
                        help='images back-propagated together')
    parser.add_argument('--device', default='cpu',
                        help='device of the models, e.g. cuda:0')
    parser.add_argument('--out-dir', required=True,
                        help='where the JSON and PNG files go')
    parser.add_argument(
        '--compare', nargs='+', default=[], metavar='JSON',
        help=f'{JSON_NAME} files of earlier runs to draw as more curves')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of every config, key=value')
    args = parser.parse_args(argv)
    if len(args.models) % 2:
        parser.error('expected CONFIG CHECKPOINT pairs, got an odd number '
                     f'of paths: {args.models}')
    try:
        for option in ('num_images', 'bins', 'batch_size'):
            check_positive_int(f'--{option.replace("_", "-")}',
                               getattr(args, option))
        # a similarity needs a pair of filters
        check_int('--num-filters', args.num_filters, min_value=2)
        check_int('--seed', args.seed, min_value=0)
        check_int('--image-size', args.image_size, min_value=8)
    except ValueError as error:
        parser.error(str(error))
    return args


def read_images(folder: str, num_images: int, size: int) -> torch.Tensor:
    """The first ``num_images`` images of ``folder`` (sorted by name), as
    mmcv reads them (BGR), resized to ``size x size``."""
    if not osp.isdir(folder):
        raise SystemExit(f'--images: {folder!r} is not a folder')
    paths = sorted(
        osp.join(folder, name) for name in os.listdir(folder)
        if name.lower().endswith(IMAGE_EXTENSIONS))[:num_images]
    if not paths:
        raise SystemExit(f'--images: no {"/".join(IMAGE_EXTENSIONS)} image '
                         f'in {folder!r}')
    images = [
        torch.from_numpy(mmcv.imresize(mmcv.imread(path), (size, size)))
        for path in paths
    ]
    return torch.stack(images).permute(0, 3, 1, 2).float()


def model_labels(configs: List[str]) -> List[str]:
    """A name per model: its config's file name, numbered when repeated."""
    stems = [osp.splitext(osp.basename(path))[0] for path in configs]
    return [
        stem if stems.count(stem) == 1 else f'{stem}-{index}'
        for index, stem in enumerate(stems)
    ]


def analyse_model(args: argparse.Namespace, config: str, checkpoint: str,
                  label: str, images: torch.Tensor, images_text: str,
                  out_dir: str) -> Dict[str, dict]:
    """The JSON of one model, written with its matrix PNGs to
    ``out_dir``."""
    cfg = Config.fromfile(check_file(config, 'config'))
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    model = build_model_from_config(cfg)
    try:
        load_model_checkpoint(model, checkpoint)
    except (OSError, ValueError, RuntimeError) as error:
        raise SystemExit(f'{config}: {error}')
    try:
        results = filter_similarity(
            model.to(args.device),
            preprocess_images(model, images.to(args.device)), args.layers,
            args.num_filters, args.seed, args.batch_size)
    except ValueError as error:
        raise SystemExit(f'{config}: {error}')
    os.makedirs(out_dir, exist_ok=True)
    summary = {}
    for layer, result in results.items():
        entry = similarity_summary(result, args.bins)
        entry.update(model=label, config=config, checkpoint=checkpoint,
                     images=images_text)
        summary[layer] = entry
        path = osp.join(out_dir, f'{layer}.png')
        plot_similarity_matrix(
            result.similarity,
            f'{label}: {layer}\n{entry["num_filters"]} filters, '
            f'{entry["num_images"]} images, mean {entry["mean"]:.3f}'
        ).savefig(path, dpi=120)
        print(f'{label} {layer}: mean similarity {entry["mean"]:.4f} of '
              f'{entry["num_filters"]} filters on {entry["num_images"]} '
              f'images -> {path}')
    json_path = osp.join(out_dir, JSON_NAME)
    with open(json_path, 'w') as f:
        json.dump(summary, f, indent=2)
    print(f'{label}: written to {json_path}')
    return summary


def read_compared(path: str, layers: List[str]) -> Tuple[str, dict]:
    """The model name and the ``layers`` entries of an earlier JSON."""
    summary = load_json_file(path, f'{JSON_NAME} of --compare')
    kept = {layer: summary[layer] for layer in layers if layer in summary}
    if not kept:
        raise SystemExit(f'--compare {path}: none of the layers {layers} is '
                         f'in it; it has {list(summary)}')
    label = next(iter(kept.values())).get(
        'model', osp.basename(osp.dirname(osp.abspath(path))))
    return label, kept


def main(argv: Optional[List[str]] = None) -> Dict[str, Dict[str, dict]]:
    args = parse_args(argv)
    configs, checkpoints = args.models[0::2], args.models[1::2]
    compared = [read_compared(path, args.layers) for path in args.compare]
    if args.images is None:
        images = generated_images(args.num_images, args.image_size, args.seed)
        images_text = (f'generated: {args.num_images} smooth random images '
                       f'of {args.image_size} x {args.image_size}, seed '
                       f'{args.seed}')
        print(f'no --images: using {images_text[len("generated: "):]}')
    else:
        images = read_images(args.images, args.num_images, args.image_size)
        images_text = args.images
        print(f'{images.shape[0]} images of {args.images}')
    labels = model_labels(configs)
    curves: Dict[str, Dict[str, dict]] = {}
    for config, checkpoint, label in zip(configs, checkpoints, labels):
        out_dir = (args.out_dir if len(configs) == 1 else osp.join(
            args.out_dir, label))
        curves[label] = analyse_model(args, config, checkpoint, label,
                                      images, images_text, out_dir)
    for label, summary in compared:
        while label in curves:
            label += ' (compared)'
        curves[label] = summary
    path = osp.join(args.out_dir, HISTOGRAM_NAME)
    plot_similarity_histograms(curves).savefig(path, dpi=120)
    print(f'histograms of {len(curves)} models written to {path}')
    return curves


if __name__ == '__main__':
    main()
