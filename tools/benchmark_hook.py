"""Cost of the OrthogonalityLossHook in a detector's training iteration.

Times training iterations (forward, backward and SGD step through the model's
``train_step``) on a batch of random images with random boxes, alternately
without and with the hook's ``loss_orth`` term, and prints the median time of
each, their ratio and the spread. Also times the ``loss_orth`` term alone
(its forward and backward on every shared basis) and counts its
multiply-adds.

Both the wall-clock time and the CPU time of the process are measured; on a
machine shared with other jobs the wall-clock time mostly measures the
others, and the CPU time of a single thread (``--threads 1``) is the robust
figure.

The default model is mmdet's Faster R-CNN R50-FPN with the backbone replaced
by ``SharedBasisResNet(depth=50, share='conv2')`` (ResNet50-Shared).

Example:
    python tools/benchmark_hook.py --iters 20
    python tools/benchmark_hook.py --backbone-share conv1_conv2
    python tools/benchmark_hook.py --config my_detector.py --iters 10
"""
import tool_utils  # noqa: F401,I001 (first: see tools/tool_utils)
import argparse
import json
import statistics
import tempfile
import time
from typing import Callable, Dict, List, Optional

import torch
import torch.nn as nn
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config, DictAction
from mmengine.hub import get_config
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner

from sharedbasis_mm.analysis import build_model_from_config
from sharedbasis_mm.hooks import OrthogonalityLossHook
from sharedbasis_mm.layers import find_shared_bases, orthogonality_error

from tool_utils import DefaultsHelpFormatter, int_at_least

DEFAULT_CONFIG = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter,
        description='Time training iterations of a detector with and '
        'without the OrthogonalityLossHook on the CPU.')
    parser.add_argument(
        '--config',
        help='mmdet detector config (its model is used as is); default: '
        f'{DEFAULT_CONFIG} with a SharedBasisResNet-50 backbone')
    parser.add_argument(
        '--backbone-share',
        default='conv2',
        choices=['conv2', 'conv1_conv2', 'all'],
        help='share mode of the default SharedBasisResNet-50 backbone')
    parser.add_argument(
        '--iters', type=int_at_least(1), default=10, help='timed iterations of each')
    parser.add_argument(
        '--warmup', type=int_at_least(0), default=2, help='untimed iterations of each')
    parser.add_argument(
        '--threads',
        type=int_at_least(1),
        help='torch CPU threads (default: torch\'s default)')
    parser.add_argument(
        '--batch-size', type=int_at_least(1), default=2, help='images per iteration')
    parser.add_argument(
        '--image-size', type=int_at_least(1), default=256, help='H = W of the images')
    parser.add_argument(
        '--loss-weight',
        type=float,
        default=10.,
        help='loss_weight of the OrthogonalityLossHook')
    parser.add_argument(
        '--reduction',
        default='mean',
        choices=['sum', 'mean'],
        help='reduction of the OrthogonalityLossHook')
    parser.add_argument('--out', help='also write the results to this JSON')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value')
    return parser.parse_args(argv)


def load_config(args: argparse.Namespace) -> Config:
    if args.config is None:
        cfg = get_config(DEFAULT_CONFIG)
        cfg.model.backbone = dict(
            type='SharedBasisResNet',
            depth=50,
            share=args.backbone_share,
            init_cfg=None)
    else:
        cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.setdefault('default_scope', 'mmdet')
    return cfg


CLOCKS = dict(wall=time.perf_counter, cpu=time.process_time)


def time_call(step: Callable[[], None]) -> Dict[str, float]:
    """Seconds ``step()`` takes, on the wall clock and in process CPU
    time."""
    start = {name: clock() for name, clock in CLOCKS.items()}
    step()
    return {name: clock() - start[name] for name, clock in CLOCKS.items()}


def summary(times: List[float]) -> Dict[str, float]:
    """Median, first and third quartiles, minimum and maximum."""
    quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else [
        times[0]
    ] * 3
    return dict(
        median=statistics.median(times),
        q1=quartiles[0],
        q3=quartiles[2],
        min=min(times),
        max=max(times))


def loss_term_macs(bases: Dict[str, nn.Parameter]) -> int:
    """Multiply-adds of the loss term's forward and backward: the Gram
    matrix of an ``(R, D)`` basis (``R <= D``) costs ``R^2 D``, and autograd
    spends two more such products on its gradient."""
    macs = 0
    for basis in bases.values():
        rows, cols = sorted(basis.reshape(basis.shape[0], -1).shape)
        macs += 3 * rows * rows * cols
    return macs


def time_iterations(runner: Runner, data: dict, optim_wrapper: OptimWrapper,
                    hook: OrthogonalityLossHook, iters: int,
                    warmup: int) -> Dict[bool, List[Dict[str, float]]]:
    """Times of ``iters`` training steps without and with the hook, after
    ``warmup`` untimed ones each; keyed by whether the hook was on."""
    model = runner.model

    def train_step(with_hook: bool) -> None:
        log_vars = model.train_step(data, optim_wrapper)
        if ('loss_orth' in log_vars) != with_hook:
            raise RuntimeError(
                f'loss_orth must be in the losses exactly when the hook is '
                f'on; with_hook={with_hook}, losses {list(log_vars)}')

    times = {False: [], True: []}
    for index in range(warmup + iters):
        # Alternate which goes first, so that drifts hit both alike.
        for with_hook in (index % 2 == 1, index % 2 == 0):
            if with_hook:
                hook.before_train(runner)
            elapsed = time_call(lambda: train_step(with_hook))
            if with_hook:
                hook.after_train(runner)
            if index >= warmup:
                times[with_hook].append(elapsed)
                print(f'  iter {index - warmup + 1:3d} '
                      f'{"with" if with_hook else "without":>7} hook: '
                      f'wall {elapsed["wall"] * 1e3:8.1f} ms, '
                      f'cpu {elapsed["cpu"] * 1e3:8.1f} ms')
    return times


def main(argv: Optional[List[str]] = None) -> Dict:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cfg = load_config(args)
    torch.manual_seed(0)
    model = build_model_from_config(cfg)
    bases = find_shared_bases(model)
    if not bases:
        raise ValueError('the model has no shared filter basis to regularize')
    num_classes = cfg.model.roi_head.bbox_head.num_classes if hasattr(
        cfg.model, 'roi_head') else cfg.model.bbox_head.num_classes
    data = demo_mm_inputs(
        batch_size=args.batch_size,
        image_shapes=(3, args.image_size, args.image_size),
        num_items=[3] * args.batch_size,
        num_classes=num_classes)
    optim_wrapper = OptimWrapper(
        torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9))
    hook = OrthogonalityLossHook(
        loss_weight=args.loss_weight, reduction=args.reduction)
    print(f'{type(model).__name__} with {len(bases)} shared bases, batch '
          f'{args.batch_size} x 3 x {args.image_size} x {args.image_size}, '
          f'{torch.get_num_threads()} threads, {args.warmup} + {args.iters} '
          f'iterations each')
    with tempfile.TemporaryDirectory() as work_dir:
        runner = Runner(model=model, work_dir=work_dir, log_level='WARNING')
        model.init_weights()
        model.train()
        times = time_iterations(runner, data, optim_wrapper, hook,
                                args.iters, args.warmup)

    def loss_term() -> None:
        loss = args.loss_weight * sum(
            orthogonality_error(basis, args.reduction)
            for basis in bases.values())
        loss.backward()

    term_times = [time_call(loss_term) for _ in range(args.iters)]
    optim_wrapper.zero_grad()

    results = dict(
        model=type(model).__name__,
        num_bases=len(bases),
        batch_shape=[args.batch_size, 3, args.image_size, args.image_size],
        threads=torch.get_num_threads(),
        iters=args.iters,
        loss_term_gmacs=loss_term_macs(bases) / 1e9)
    for clock in CLOCKS:
        without = [t[clock] for t in times[False]]
        with_hook = [t[clock] for t in times[True]]
        term = [t[clock] for t in term_times]
        results[clock] = dict(
            without_hook_s=summary(without),
            with_hook_s=summary(with_hook),
            loss_term_s=summary(term),
            ratio_of_medians=statistics.median(with_hook) /
            statistics.median(without),
            pair_ratio=summary([w / wo
                                for w, wo in zip(with_hook, without)]),
            loss_term_fraction=statistics.median(term) /
            statistics.median(without))
        print(f'{clock} time:')
        for label, key in (('without hook', 'without_hook_s'),
                           ('with hook', 'with_hook_s'),
                           ('loss_orth term alone', 'loss_term_s')):
            stats = results[clock][key]
            print(f'  {label:>20}: median {stats["median"] * 1e3:9.2f} ms '
                  f'(quartiles {stats["q1"] * 1e3:.2f}-'
                  f'{stats["q3"] * 1e3:.2f}, range '
                  f'{stats["min"] * 1e3:.2f}-{stats["max"] * 1e3:.2f})')
        pair = results[clock]['pair_ratio']
        print(f'  with / without hook: ratio of medians '
              f'{results[clock]["ratio_of_medians"]:.4f}; per pair median '
              f'{pair["median"]:.4f} (quartiles {pair["q1"]:.4f}-'
              f'{pair["q3"]:.4f}); loss_orth term alone '
              f'{results[clock]["loss_term_fraction"] * 100:.2f}% of the '
              f'median iteration without the hook')
    print(f'loss_orth term: {results["loss_term_gmacs"]:.3f} GMAC '
          f'(forward and backward, 3 R^2 D per (R, D) basis)')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)
        print(f'results written to {args.out}')
    return results


if __name__ == '__main__':
    main()
