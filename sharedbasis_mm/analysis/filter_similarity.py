"""How alike a layer's filters are, by their guided back-propagation
patterns (Tied Block Convolution, Figures 1 and 9).

For an image ``x`` and filter ``c`` of a convolution, the pattern is the
gradient with respect to the network input of the filter's response (the
sum of its output map), back-propagated with every ``nn.ReLU`` replaced by
the guided rule of Springenberg et al. (2014): the gradient passes where the
ReLU's forward input was positive AND the incoming gradient is positive.
Two filters are compared by the cosine similarity of their patterns on the
same image, averaged over the images; the histogram of these pairwise
similarities (each pair once) shows how redundant a layer's filters are.

Only ``nn.ReLU`` modules are made guided; a ReLU called as a function (as in
the squeeze-excitation of :class:`~sharedbasis_mm.attention.TiedSE`) or any
other activation back-propagates as usual. A filter whose pattern is zero on
an image (it never fires there) has similarity 0 with every filter on it.
"""
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from torch import Tensor
from torch.nn.modules.conv import _ConvNd

from ..backbones.tied_resnet import TiedSplitConv
from ..layers import BasisConv2d, SharedBasisConv2d, TiedBlockConv2d
from ..utils.validation import check_int, check_positive_int
from .coefficients import mean_off_diagonal

# modules whose output is a convolution's: their own children (a TBC's thin
# nn.Conv2d, a shared-basis layer's basis, the TBCs and mixer of the 3 x 3
# stage of a TiedBottleneck) are parts, not convolutions
CONVOLUTION_TYPES = (_ConvNd, TiedBlockConv2d, BasisConv2d, SharedBasisConv2d,
                     TiedSplitConv)
# the x-range of a cosine similarity
SIMILARITY_RANGE = (-1.0, 1.0)


class GuidedReLUFunction(torch.autograd.Function):
    """ReLU whose backward is the guided rule: ``g * (x > 0) * (g > 0)``."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        x, = ctx.saved_tensors
        return grad * ((x > 0) & (grad > 0))


class GuidedReLU(nn.Module):
    """``nn.ReLU`` with the guided backward of :class:`GuidedReLUFunction`."""

    def forward(self, x: Tensor) -> Tensor:
        return GuidedReLUFunction.apply(x)


@contextmanager
def guided_relus(model: nn.Module) -> Iterator[int]:
    """Within the block, every ``nn.ReLU`` module of ``model`` is a
    :class:`GuidedReLU`; the originals are put back on leaving.

    Yields:
        int: How many ReLU modules were replaced.
    """
    replaced: List[Tuple[nn.Module, str, nn.Module]] = []
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.ReLU):
                replaced.append((parent, name, child))
    for parent, name, _ in replaced:
        setattr(parent, name, GuidedReLU())
    try:
        yield len(replaced)
    finally:
        for parent, name, child in replaced:
            setattr(parent, name, child)


def convolution_names(model: nn.Module) -> List[str]:
    """The names of the model's convolutions, in module order: the
    ``nn.Conv*``, TBC/TGC, shared-basis layers and the 3 x 3 stages of
    TiedResNet's bottlenecks (``TiedSplitConv``) not inside another one."""
    names: List[str] = []
    for name, module in model.named_modules():
        if not isinstance(module, CONVOLUTION_TYPES):
            continue
        if any(name.startswith(outer + '.') for outer in names):
            continue
        names.append(name)
    return names


def check_layers(model: nn.Module, layers: Sequence[str]) -> List[str]:
    """Return ``layers`` as a list; raise a ValueError naming the first that
    is not a convolution of ``model`` (see :func:`convolution_names`), with
    the list of those that are."""
    names = convolution_names(model)
    if not layers:
        raise ValueError('layers must name at least one convolution, got '
                         f'layers={list(layers)!r}')
    for layer in layers:
        if layer not in names:
            raise ValueError(
                f'layer {layer!r} is not a convolution of the model; its '
                f'{len(names)} convolutions are: {", ".join(names)}')
    return list(layers)


def sample_filters(num_channels: int, num_filters: int,
                   seed: int = 0) -> List[int]:
    """``num_filters`` distinct channel indices drawn at random (all of them
    when there are fewer), sorted; the same for the same arguments."""
    check_positive_int('num_channels', num_channels)
    check_positive_int('num_filters', num_filters)
    check_int('seed', seed, min_value=0)
    if num_filters >= num_channels:
        return list(range(num_channels))
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(num_channels, generator=generator)[:num_filters]
    return sorted(chosen.tolist())


class _LayersReached(Exception):
    """Raised by a forward hook once every requested layer has run."""


def forward_features(model: nn.Module, inputs: Tensor) -> None:
    """Run the model's feature extraction: ``extract_feat`` of an
    mmpretrain classifier or mmdet detector, else the model itself."""
    getattr(model, 'extract_feat', model)(inputs)


def layer_outputs(model: nn.Module, inputs: Tensor,
                  layers: Sequence[str]) -> Dict[str, Tensor]:
    """The outputs of the named modules on ``inputs``; the forward stops
    after the last of them has run.

    Raises:
        ValueError: an output is no ``(N, C, H, W)`` tensor of the batch.
    """
    outputs: Dict[str, Tensor] = {}

    def keep(name: str):

        def hook(module: nn.Module, args, output) -> None:
            if not (isinstance(output, Tensor) and output.dim() == 4
                    and output.shape[0] == inputs.shape[0]):
                shape = tuple(getattr(output, 'shape', ()))
                raise ValueError(
                    f'layer {name!r} gives {type(output).__name__} of shape '
                    f'{shape}; expected an (N, C, H, W) tensor with '
                    f'N={inputs.shape[0]}, the batch')
            outputs[name] = output
            if len(outputs) == len(layers):
                raise _LayersReached

        return hook

    handles = [
        model.get_submodule(name).register_forward_hook(keep(name))
        for name in layers
    ]
    try:
        forward_features(model, inputs)
    except _LayersReached:
        pass
    finally:
        for handle in handles:
            handle.remove()
    missing = [name for name in layers if name not in outputs]
    if missing:
        raise ValueError(f'layers {missing} did not run in the forward pass '
                         'of the model')
    return outputs


def guided_backprop_patterns(model: nn.Module, inputs: Tensor,
                             layer_filters: Dict[str, Sequence[int]]
                             ) -> Dict[str, Tensor]:
    """The guided back-propagation pattern of each filter of each layer.

    Args:
        model (nn.Module): The model, in eval mode for a fixed BN.
        inputs (Tensor): ``(N, 3, H, W)`` network inputs (normalized).
        layer_filters (dict[str, Sequence[int]]): Layer name to the output
            channels (filters) whose patterns to compute.

    Returns:
        dict[str, Tensor]: For each layer, ``(N, F, 3 * H * W)``: the
        gradient of each filter's summed response with respect to each
        image, ReLUs guided.
    """
    inputs = inputs.detach().requires_grad_(True)
    patterns: Dict[str, Tensor] = {}
    with torch.enable_grad(), guided_relus(model):
        outputs = layer_outputs(model, inputs, list(layer_filters))
        for name, filters in layer_filters.items():
            grads = []
            for channel in filters:
                # images are independent in eval mode, so the gradient of
                # the sum over the batch is each image's own gradient
                grad, = torch.autograd.grad(
                    outputs[name][:, channel].sum(), inputs,
                    retain_graph=True, allow_unused=True)
                grads.append(
                    torch.zeros_like(inputs) if grad is None else grad)
            patterns[name] = torch.stack(grads, 1).flatten(2)
    return patterns


def pattern_similarity(patterns: Tensor) -> Tensor:
    """Cosine similarity of the patterns of each image, summed over images.

    Args:
        patterns (Tensor): ``(N, F, D)`` patterns of F filters on N images.

    Returns:
        Tensor: ``(F, F)`` float64 sum over the images of the pairwise
        cosine similarities, a zero pattern being 0 with every pattern.
    """
    unit = F.normalize(patterns.double(), dim=2)
    return (unit @ unit.transpose(1, 2)).sum(0)


@dataclass
class FilterSimilarity:
    """The similarity of the sampled filters of one layer.

    Attributes:
        similarity (Tensor): ``(F, F)`` mean over the images of the pairwise
            cosine similarity of the guided back-propagation patterns.
        filters (list[int]): The sampled output channels, in order.
        num_images (int): The images averaged over.
    """
    similarity: Tensor
    filters: List[int]
    num_images: int


def filter_similarity(model: nn.Module,
                      images: Tensor,
                      layers: Sequence[str],
                      num_filters: int = 64,
                      seed: int = 0,
                      batch_size: int = 8) -> Dict[str, FilterSimilarity]:
    """Figure 1a of Tied Block Convolution for each named layer: the
    pairwise similarity of ``num_filters`` sampled filters, averaged over
    ``images``.

    Args:
        model (nn.Module): The model; it is put in eval mode.
        images (Tensor): ``(N, 3, H, W)`` network inputs, normalized as the
            model expects.
        layers (Sequence[str]): Names of convolutions of the model (see
            :func:`convolution_names`).
        num_filters (int): Filters sampled per layer (all when the layer has
            fewer). Defaults to 64.
        seed (int): Seed of the sampling. Defaults to 0.
        batch_size (int): Images back-propagated together. Defaults to 8.

    Returns:
        dict[str, FilterSimilarity]: One entry per layer, in order.
    """
    layers = check_layers(model, layers)
    num_filters = check_positive_int('num_filters', num_filters)
    batch_size = check_positive_int('batch_size', batch_size)
    if not (isinstance(images, Tensor) and images.dim() == 4
            and images.shape[0] > 0):
        raise ValueError('images must be an (N, C, H, W) tensor with N >= 1, '
                         f'got {getattr(images, "shape", type(images))}')
    model.eval()
    with torch.no_grad():
        first = layer_outputs(model, images[:1], layers)
    layer_filters = {
        name: sample_filters(first[name].shape[1], num_filters, seed)
        for name in layers
    }
    sums = {
        name: torch.zeros(len(filters), len(filters), dtype=torch.float64)
        for name, filters in layer_filters.items()
    }
    for batch in images.split(batch_size):
        patterns = guided_backprop_patterns(model, batch, layer_filters)
        for name, layer_patterns in patterns.items():
            sums[name] += pattern_similarity(layer_patterns).cpu()
    num_images = images.shape[0]
    return {
        name: FilterSimilarity((sums[name] / num_images).float(),
                               layer_filters[name], num_images)
        for name in layers
    }


def similarity_histogram(similarity: Tensor,
                         bins: int = 40) -> Tuple[np.ndarray, np.ndarray]:
    """Figure 1b / 9 of Tied Block Convolution: the normalized histogram of
    the pairwise similarities (the pairs ``i < j``).

    Args:
        similarity (Tensor): ``(F, F)`` symmetric similarity, ``F >= 2``.
        bins (int): Equal bins over ``[-1, 1]``. Defaults to 40.

    Returns:
        tuple[np.ndarray, np.ndarray]: The fraction of pairs in each bin
        (summing to 1) and the ``bins + 1`` edges.
    """
    bins = check_positive_int('bins', bins)
    size = similarity.shape[0]
    if similarity.dim() != 2 or similarity.shape[1] != size or size < 2:
        raise ValueError('similarity must be a square matrix of at least '
                         f'2 x 2, got shape {tuple(similarity.shape)}')
    rows, cols = np.triu_indices(size, k=1)
    pairs = similarity.double().cpu().numpy()[rows, cols]
    counts, edges = np.histogram(
        np.clip(pairs, *SIMILARITY_RANGE), bins=bins, range=SIMILARITY_RANGE)
    return counts / counts.sum(), edges


def similarity_summary(result: FilterSimilarity, bins: int = 40) -> dict:
    """The JSON entry of one layer: ``mean`` (the mean pairwise
    similarity), ``histogram``, ``bin_edges``, ``num_filters``,
    ``num_images`` and ``filters``."""
    histogram, edges = similarity_histogram(result.similarity, bins)
    return dict(
        mean=mean_off_diagonal(result.similarity),
        histogram=histogram.tolist(),
        bin_edges=edges.tolist(),
        num_filters=len(result.filters),
        num_images=result.num_images,
        filters=result.filters)


def plot_similarity_matrix(similarity: Tensor, title: str = ''):
    """Figure 1a of Tied Block Convolution: the pairwise similarity matrix,
    red for dissimilar to light yellow for similar filters.

    Returns:
        matplotlib.figure.Figure: One panel and its colour bar.
    """
    from matplotlib.figure import Figure
    figure = Figure(figsize=(5, 4.2), layout='constrained')
    axes = figure.add_subplot()
    shown = axes.imshow(
        similarity.cpu().numpy(), cmap='YlOrRd_r', vmin=SIMILARITY_RANGE[0],
        vmax=SIMILARITY_RANGE[1], interpolation='nearest')
    axes.set_xlabel('filter')
    axes.set_ylabel('filter')
    axes.set_title(title, fontsize=9)
    figure.colorbar(shown, ax=axes, label='cosine similarity')
    return figure


def plot_similarity_histograms(curves: Dict[str, Dict[str, dict]]):
    """Figure 1b / 9 of Tied Block Convolution: one panel per layer, one
    curve per model.

    Args:
        curves (dict[str, dict[str, dict]]): Model name to layer name to a
            :func:`similarity_summary` entry (``histogram``, ``bin_edges``).

    Returns:
        matplotlib.figure.Figure: The panels, in the order the layers first
        appear.
    """
    from matplotlib.figure import Figure
    layers = list(dict.fromkeys(
        layer for summary in curves.values() for layer in summary))
    figure = Figure(figsize=(4 * len(layers), 3.4), layout='constrained')
    for index, layer in enumerate(layers):
        axes = figure.add_subplot(1, len(layers), index + 1)
        for model_name, summary in curves.items():
            if layer not in summary:
                continue
            entry = summary[layer]
            edges = np.asarray(entry['bin_edges'])
            axes.plot((edges[:-1] + edges[1:]) / 2, entry['histogram'],
                      label=f"{model_name} (mean {entry['mean']:.3f})")
        axes.set_title(layer, fontsize=9)
        axes.set_xlabel('cosine similarity')
        axes.set_ylabel('fraction of filter pairs')
        axes.legend(fontsize=7)
    return figure


def generated_images(num_images: int, size: int, seed: int = 0) -> Tensor:
    """Smooth random colour images, for when no images are given: noise on
    an ``size / 8`` grid upsampled bilinearly, values in ``[0, 255]``.

    Returns:
        Tensor: ``(num_images, 3, size, size)`` float32.
    """
    check_positive_int('num_images', num_images)
    check_int('size', size, min_value=8)
    check_int('seed', seed, min_value=0)
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(num_images, 3, max(size // 8, 2), max(size // 8, 2),
                        generator=generator)
    fine = torch.rand(num_images, 3, size, size, generator=generator)
    smooth = F.interpolate(coarse, size=(size, size), mode='bilinear',
                           align_corners=False)
    return (0.8 * smooth + 0.2 * fine) * 255


def preprocess_images(model: nn.Module, images: Tensor) -> Tensor:
    """The network inputs of ``images`` as the model's data preprocessor
    makes them (channel order, normalization, padding), or ``images``
    themselves when the model has none.

    Args:
        model (nn.Module): An mmengine model (``data_preprocessor``).
        images (Tensor): ``(N, 3, H, W)`` images as mmcv reads them (BGR,
            values in ``[0, 255]``).
    """
    preprocessor = getattr(model, 'data_preprocessor', None)
    if preprocessor is None:
        return images
    data = preprocessor(dict(inputs=list(images)), False)
    return data['inputs']
