"""Loading checkpoints: mmengine Runner checkpoints under torch's
``weights_only`` default, files named in every error, and the conversion of
a classifier checkpoint into a backbone checkpoint."""
import pickle
import re
from collections import OrderedDict
from typing import Callable, Dict, Optional

import numpy as np
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer
from mmengine.runner import load_state_dict
from torch import Tensor

from .validation import check_file

CLASSIFIER_PREFIXES = ('backbone', 'neck', 'head', 'data_preprocessor')

# The statistics methods of mmengine's HistoryBuffer, which its pickles hold
# (``HistoryBuffer.__getstate__``), each as ``getattr(HistoryBuffer, name)``.
HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def history_buffer_method(obj: type, name: str) -> Callable:
    """``getattr`` as the pickles of mmengine's HistoryBuffer use it, and for
    nothing else: ``getattr(HistoryBuffer, name)`` of a statistics method.

    Raises:
        pickle.UnpicklingError: for any other object or attribute.
    """
    if obj is not HistoryBuffer or name not in HISTORY_BUFFER_METHODS:
        raise pickle.UnpicklingError(
            'a checkpoint may call getattr only as mmengine\'s HistoryBuffer '
            f'is pickled, getattr(HistoryBuffer, one of '
            f'{HISTORY_BUFFER_METHODS}); got getattr({obj!r}, {name!r})')
    return getattr(obj, name)


# What an mmengine Runner pickles into a checkpoint besides tensors and
# plain containers (found with
# ``torch.serialization.get_unsafe_globals_in_checkpoint`` on the
# checkpoints of epoch- and iteration-based runs, checked by
# tests/test_checkpoint_loading.py): the message hub's HistoryBuffer of each
# logged scalar, with its statistics methods (``getattr``, allowed for them
# only) and numpy arrays inside (float64 values, int64 counts), and numpy
# scalars (``eta``). Each is needed (the test leaves each out in turn).
RUNNER_CHECKPOINT_GLOBALS = [
    HistoryBuffer,
    (history_buffer_method, 'builtins.getattr'),
    np.ndarray,
    np.dtype,
    np.dtypes.Float64DType,
    np.dtypes.Int64DType,
    np._core.multiarray._reconstruct,
    np._core.multiarray.scalar,
]


def register_runner_checkpoint_globals() -> None:
    """Let ``torch.load(..., weights_only=True)``, torch's default, load the
    checkpoints an mmengine Runner writes.

    Registers :data:`RUNNER_CHECKPOINT_GLOBALS`, and nothing else, with
    ``torch.serialization.add_safe_globals``; the ``getattr`` they need is
    :func:`history_buffer_method`, which gives HistoryBuffer's statistics
    methods and refuses anything else. Importing ``sharedbasis_mm``
    (a config's ``custom_imports``) calls it, so mmdet's and mmpretrain's
    tools and inferencers load such checkpoints with torch's default.
    """
    torch.serialization.add_safe_globals(RUNNER_CHECKPOINT_GLOBALS)


def load_checkpoint_file(path: str) -> dict:
    """Load a checkpoint file on the CPU, as ``torch.load`` does by default
    (``weights_only=True``).

    Raises:
        FileNotFoundError, IsADirectoryError, PermissionError: ``path`` is
            no readable file.
        ValueError: the file is not a checkpoint (truncated, random bytes,
            not written by ``torch.save``), holds objects that
            ``weights_only`` refuses, or holds no dict; the message names
            the file.
    """
    check_file(path, 'checkpoint')
    try:
        checkpoint = torch.load(path, map_location='cpu')
    except Exception as error:
        # bytes that are no checkpoint make torch's unpickler fail in many
        # ways (UnpicklingError, EOFError, IndexError, KeyError, ...)
        reason = str(error).strip().splitlines()[0] if str(error) else ''
        raise ValueError(
            f'the checkpoint {path!r} cannot be loaded '
            f'({type(error).__name__}: {reason}); expected a file written by '
            'torch.save, such as the checkpoint of an mmengine Runner '
            '(a truncated copy or another kind of file gives this '
            'error)') from error
    if not isinstance(checkpoint, dict):
        raise ValueError(f'the checkpoint {path!r} holds a '
                         f'{type(checkpoint).__name__}; expected a dict (a '
                         'state_dict, or a checkpoint with a state_dict)')
    return checkpoint


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


def load_model_checkpoint(model: nn.Module,
                          path: str,
                          strict: bool = True) -> dict:
    """Load the ``state_dict`` of the checkpoint file ``path`` into
    ``model``, as mmengine's ``load_checkpoint`` does (a ``module.``
    prefix is dropped), with errors naming the file (and, with ``strict``,
    the first key that does not fit: :func:`first_unfit_key`).

    Returns:
        dict: The checkpoint.
    """
    checkpoint = load_checkpoint_file(path)
    state_dict = checkpoint.get('state_dict', checkpoint)
    state_dict = OrderedDict((re.sub(r'^module\.', '', key), value)
                             for key, value in state_dict.items())
    unfit = first_unfit_key(model, state_dict) if strict else None
    try:
        if unfit is not None:
            raise RuntimeError(unfit)
        load_state_dict(model, state_dict, strict=strict)
    except RuntimeError as error:
        raise RuntimeError(f'the checkpoint {path!r} does not fit the '
                           f'model: {error}') from None
    return checkpoint


def classifier_to_backbone(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """The ``backbone.`` weights of a classifier, without the prefix.

    Raises:
        ValueError: when ``state_dict`` is not an mmpretrain classifier's
            (``backbone.*``, ``neck.*``, ``head.*`` keys): a detector's, a
            bare backbone's or anything else.
    """
    prefixes = sorted({key.split('.', 1)[0] for key in state_dict})
    unexpected = [p for p in prefixes if p not in CLASSIFIER_PREFIXES]
    if 'backbone' not in prefixes or unexpected:
        raise ValueError(
            'expected an mmpretrain classifier checkpoint, whose state_dict '
            'keys start with backbone., neck. or head.; got keys starting '
            f'with {", ".join(p + "." for p in prefixes[:8])}')
    return OrderedDict((key[len('backbone.'):], value)
                       for key, value in state_dict.items()
                       if key.startswith('backbone.'))
