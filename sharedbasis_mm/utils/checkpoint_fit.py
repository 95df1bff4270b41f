"""Whether a checkpoint fits a model, told by the first key that does not."""
import re
from typing import Dict, Optional

import torch.nn as nn
from torch import Tensor

from .checkpoint import load_checkpoint_file


def first_unfit_key(model: nn.Module,
                    state_dict: Dict[str, Tensor]) -> Optional[str]:
    """What is wrong with the first key of ``state_dict`` that does not fit
    ``model``, None when all fit.

    The model's keys are checked in their order (a key missing from the
    checkpoint, or of another shape), then the checkpoint's (a key the model
    does not have).
    """
    expected = model.state_dict()
    for key, value in expected.items():
        if key not in state_dict:
            return f'{key!r} is missing from the checkpoint'
        given = getattr(state_dict[key], 'shape', None)
        if given is not None and tuple(given) != tuple(value.shape):
            return (f'{key!r} has shape {tuple(given)} in the checkpoint and '
                    f'{tuple(value.shape)} in the model')
    for key in state_dict:
        if key not in expected:
            return f'{key!r} of the checkpoint is not in the model'
    return None


def load_fitting_checkpoint(model: nn.Module, path: str) -> dict:
    """Load the checkpoint file ``path`` into ``model`` if every key fits.

    Returns:
        dict: The checkpoint.

    Raises:
        ValueError: a key does not fit; the message names the file and the
            first such key (see :func:`first_unfit_key`).
    """
    checkpoint = load_checkpoint_file(path)
    # a ``module.`` prefix (a wrapped model's) is dropped, as mmengine does
    state_dict = {
        re.sub(r'^module\.', '', key): value
        for key, value in checkpoint.get('state_dict', checkpoint).items()
    }
    unfit = first_unfit_key(model, state_dict)
    if unfit is not None:
        raise ValueError(f'the checkpoint {path!r} does not fit the model: '
                         f'{unfit}')
    model.load_state_dict(state_dict)
    return checkpoint
