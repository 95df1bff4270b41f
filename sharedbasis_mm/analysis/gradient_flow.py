"""Plot of the gradients flowing into shared filter bases (Learning Deeply
Shared Filter Bases, Fig. 3).

Figure 3 of Learning Deeply Shared Filter Bases draws, for each shared
basis, a bar of the maximum and a bar of the mean absolute gradient, recorded
every few iterations of an epoch and overlapped with transparency: a bar
looks darker where many iterations reached it.
"""
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_COLOR = 'c'
MEAN_COLOR = 'b'


def plot_gradient_flow(names: Sequence[str],
                       max_grads: np.ndarray,
                       mean_grads: np.ndarray,
                       title: str = 'Gradient flow',
                       log_scale: bool = False,
                       alpha: float = 0.1) -> 'Figure':
    """A Figure-3-style bar plot of recorded gradient magnitudes.

    Args:
        names (Sequence[str]): The B shared bases, one bar pair each.
        max_grads (np.ndarray): ``(I, B)`` maximum absolute gradient of
            each basis at each of the I recorded iterations.
        mean_grads (np.ndarray): ``(I, B)`` mean absolute gradient.
        title (str): Title of the panel. Defaults to 'Gradient flow'.
        log_scale (bool): Whether the gradient axis is logarithmic.
            Defaults to False (as Figure 3).
        alpha (float): Opacity of one recorded bar. Defaults to 0.1.

    Returns:
        Figure: One panel with ``2 * I * B`` overlapped bars.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    max_grads = np.asarray(max_grads, dtype=np.float64)
    mean_grads = np.asarray(mean_grads, dtype=np.float64)
    if max_grads.ndim != 2 or max_grads.shape[1] != len(names):
        raise ValueError(f'max_grads must have shape (iterations, '
                         f'{len(names)} bases), got {max_grads.shape}')
    if mean_grads.shape != max_grads.shape:
        raise ValueError(f'mean_grads must have the shape of max_grads, '
                         f'{max_grads.shape}, got {mean_grads.shape}')
    positions = np.arange(len(names))
    figure = Figure(figsize=(max(4, 1 + 0.8 * len(names)), 4.5),
                    layout='constrained')
    axes = figure.add_subplot()
    for row_max, row_mean in zip(max_grads, mean_grads):
        axes.bar(positions, row_max, width=0.6, color=MAX_COLOR, alpha=alpha)
        axes.bar(positions, row_mean, width=0.6, color=MEAN_COLOR,
                 alpha=alpha)
    axes.set_xticks(positions, names, rotation=45, ha='right', fontsize=8)
    axes.set_xlim(-0.5, len(names) - 0.5)
    if log_scale:
        axes.set_yscale('log')
    else:
        axes.set_ylim(bottom=0)
    axes.set_xlabel('shared filter basis')
    axes.set_ylabel('|gradient|')
    axes.set_title(title)
    axes.grid(True, axis='y', linewidth=0.3)
    axes.legend([
        Line2D([0], [0], color=MAX_COLOR, linewidth=4),
        Line2D([0], [0], color=MEAN_COLOR, linewidth=4)
    ], ['max |gradient|', 'mean |gradient|'])
    return figure
