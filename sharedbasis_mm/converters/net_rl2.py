"""Checkpoints of the authors' code of "Learning Deeply Shared Filter Bases
for Efficient ConvNets" (github.com/ssregibility/Net_RL2) in our models.

Their checkpoints hold a plain ``state_dict()`` of their model, or a dict
with it under ``net_state_dict`` (optimizer state, ``acc`` and ``epoch``
beside), with or without DataParallel's ``module.`` prefix. Their models
store a shared basis under one key per block that uses it, and concatenate
a layer's unique elements before the shared ones (ours: shared first).

A backbone type is converted by one mapping function, registered with
:func:`register_net_rl2_mapping`. It receives the backbone built from the
config and yields :class:`Entry` items: a tensor of the backbone, the
checkpoint keys it comes from and, where the form differs, the fold that
computes it. :func:`convert_net_rl2` does the rest: it resolves each tensor
to its state-dict key(s) (so a mapping does not depend on where the model
keeps a shared basis), checks that the copies of a shared basis agree, that
every shape fits, that every target key is filled and every checkpoint key
used, and raises :class:`NetRL2ConversionError` naming the first key that
does not fit.
"""
import os
import os.path as osp
from collections import OrderedDict, defaultdict
from typing import (Callable, Dict, Iterable, Iterator, List, NamedTuple,
                    Optional, Sequence, Tuple, Union)

import torch
import torch.nn as nn
from torch import Tensor

NET_RL2 = 'the authors\' code of Learning Deeply Shared Filter Bases ' \
    '(github.com/ssregibility/Net_RL2)'

# One source of an entry: a checkpoint key, or the keys of the copies of one
# shared tensor, which must all hold the same values.
SourceKeys = Union[str, Tuple[str, ...]]


class NetRL2ConversionError(ValueError):
    """A checkpoint that does not fit the model it is converted for."""


class Entry(NamedTuple):
    """One tensor of the target model and where it comes from.

    Args:
        target (Tensor): A tensor of the backbone, as found in its
            ``state_dict(keep_vars=True)`` (a parameter or buffer). Every
            key holding it is filled.
        sources (Sequence[SourceKeys]): The checkpoint keys it comes from;
            a tuple of keys names the copies of one shared tensor.
        fold (callable, optional): Computes the target from the source
            tensors, in the order of ``sources``. None: a copy of the one
            source.
    """
    target: Tensor
    sources: Sequence[SourceKeys]
    fold: Optional[Callable[..., Tensor]] = None


MappingFn = Callable[[nn.Module], Iterable[Entry]]


class _Mapping(NamedTuple):
    backbone: MappingFn
    head: str


_MAPPINGS: Dict[str, _Mapping] = {}


def register_net_rl2_mapping(*backbone_types: str,
                             head: str) -> Callable[[MappingFn], MappingFn]:
    """Register the mapping of the authors' models onto ``backbone_types``.

    Args:
        *backbone_types (str): The ``type`` names of the backbones it maps.
        head (str): The prefix of the authors' classifier (a Linear), which
            fills our ``LinearClsHead`` ``head.fc``: ``'fc'``,
            ``'classifier.1'``, ``'linear'``...
    """

    def register(mapping: MappingFn) -> MappingFn:
        for name in backbone_types:
            if name in _MAPPINGS:
                raise KeyError(f'a Net_RL2 mapping for {name} is already '
                               f'registered')
            _MAPPINGS[name] = _Mapping(mapping, head)
        return mapping

    return register


def module_entries(module: nn.Module, prefix: str) -> Iterator[Entry]:
    """Copies of every tensor of ``module`` from the checkpoint's ``prefix``.

    For modules of the same form: a BatchNorm, a convolution, a Linear.
    """
    for name, tensor in module.state_dict(keep_vars=True).items():
        yield Entry(tensor, (f'{prefix}.{name}', ))


def load_net_rl2_checkpoint(path: str) -> Dict[str, Tensor]:
    """The model state dict of a checkpoint of the authors' code.

    Accepts a plain ``state_dict()`` or their ``{'net_state_dict': ...}``
    file; strips DataParallel's ``module.`` prefix.

    Raises:
        NetRL2ConversionError: when the file holds anything else.
    """
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # pickle, zip and weights-only errors alike
        raise NetRL2ConversionError(
            f'{path}: cannot be read as a checkpoint of {NET_RL2} (a '
            f'torch.save of a state dict or of a dict with '
            f'"net_state_dict"): {type(error).__name__}: {error}') from error
    if isinstance(checkpoint, dict) and 'net_state_dict' in checkpoint:
        checkpoint = checkpoint['net_state_dict']
    if (not isinstance(checkpoint, dict) or not checkpoint or not all(
            isinstance(value, Tensor) for value in checkpoint.values())):
        found = (f'a dict with keys {sorted(map(str, checkpoint))[:6]}'
                 if isinstance(checkpoint, dict) else
                 f'a {type(checkpoint).__name__}')
        hint = (' (this looks like an OpenMMLab checkpoint, which needs no '
                'conversion)' if isinstance(checkpoint, dict)
                and 'state_dict' in checkpoint else '')
        raise NetRL2ConversionError(
            f'{path}: expected a checkpoint of {NET_RL2}: a state dict of '
            f'tensors, or a dict with one under "net_state_dict"; found '
            f'{found}{hint}')
    keys = list(checkpoint)
    if all(key.startswith('module.') for key in keys):
        checkpoint = OrderedDict(
            (key[len('module.'):], value) for key, value in checkpoint.items())
    if any(key.startswith(('backbone.', 'head.')) for key in checkpoint):
        raise NetRL2ConversionError(
            f'{path}: expected a checkpoint of {NET_RL2}, whose keys are '
            f'those of their models (conv1.weight, layer1.0.bn1.weight, '
            f'shared_basis_1.weight, ...); found OpenMMLab keys '
            f'({next(iter(checkpoint))}), which need no conversion')
    return checkpoint


def _shape(tensor: Tensor) -> Tuple[int, ...]:
    return tuple(tensor.shape)


def convert_net_rl2(state_dict: Dict[str, Tensor],
                    model: nn.Module,
                    config_name: str = 'the config') -> Dict[str, Tensor]:
    """The state dict of ``model`` (an mmpretrain ``ImageClassifier``) that
    holds the weights of ``state_dict`` (a checkpoint of the authors' code).

    Args:
        state_dict (dict[str, Tensor]): Their model's state dict, as
            returned by :func:`load_net_rl2_checkpoint`.
        model (nn.Module): The classifier built from the config; only its
            structure is used.
        config_name (str): Names the config in messages.

    Returns:
        dict[str, Tensor]: Every key of ``model.state_dict()``, in its order,
        ready for ``load_state_dict(..., strict=True)``.

    Raises:
        NetRL2ConversionError: when the checkpoint does not fit the model:
            a key missing or left over, a shape that differs, copies of a
            shared basis that differ. The message names the first such key.
    """
    # the class or the nearest base with a mapping (a deprecated alias of
    # a registered name is a subclass)
    mapped = [
        cls.__name__ for cls in type(model.backbone).__mro__
        if cls.__name__ in _MAPPINGS
    ]
    if not mapped:
        raise NetRL2ConversionError(
            f'{config_name}: no Net_RL2 mapping for backbone type '
            f'{type(model.backbone).__name__}; expected one of '
            f'{sorted(_MAPPINGS)}')
    mapping = _MAPPINGS[mapped[0]]
    target_state = model.state_dict(keep_vars=True)
    keys_of: Dict[int, List[str]] = defaultdict(list)
    for key, tensor in target_state.items():
        keys_of[id(tensor)].append(key)
    head = getattr(model.head, 'fc', None)
    if not isinstance(head, nn.Linear):
        raise NetRL2ConversionError(
            f'{config_name}: expected a classifier head with a Linear "fc" '
            f'(LinearClsHead) for the authors\' classifier, got '
            f'{type(model.head).__name__}')
    entries = [
        *mapping.backbone(model.backbone), *module_entries(head, mapping.head)
    ]

    used = set()
    converted: Dict[str, Tensor] = {}
    for entry in entries:
        keys = keys_of.get(id(entry.target))
        if keys is None:
            raise RuntimeError(f'the Net_RL2 mapping of {mapped[0]} '
                               f'names a tensor that is not in the model')
        target = f'{keys[0]!r} of shape {_shape(entry.target)}'
        sources = []
        for copies in entry.sources:
            copies = (copies, ) if isinstance(copies, str) else copies
            missing = [key for key in copies if key not in state_dict]
            if missing:
                raise NetRL2ConversionError(
                    f'the checkpoint has no key {missing[0]!r}, which fills '
                    f'{target} in the model of {config_name}: it does not '
                    f'fit {config_name}')
            for key in copies[1:]:
                if not torch.equal(state_dict[key], state_dict[copies[0]]):
                    raise NetRL2ConversionError(
                        f'{key!r} and {copies[0]!r} hold one shared basis in '
                        f'{NET_RL2}, but their values differ')
            used.update(copies)
            sources.append(state_dict[copies[0]])
        described = ', '.join(
            f'{copies if isinstance(copies, str) else copies[0]!r} of shape '
            f'{_shape(tensor)}'
            for copies, tensor in zip(entry.sources, sources))
        try:
            value = entry.fold(*sources) if entry.fold else sources[0]
        except RuntimeError as error:
            raise NetRL2ConversionError(
                f'checkpoint key(s) {described} do not fit {target} in the '
                f'model of {config_name}: {error}') from error
        if _shape(value) != _shape(entry.target):
            raise NetRL2ConversionError(
                f'checkpoint key(s) {described} do not fit {target} in the '
                f'model of {config_name}')
        for key in keys:
            if key in converted:
                raise RuntimeError(f'the Net_RL2 mapping of {mapped[0]} '
                                   f'fills {key!r} twice')
            converted[key] = value.detach().clone().to(entry.target.dtype)

    _refuse_leftovers([key for key in target_state if key not in converted],
                      target_state, 'no key of the checkpoint fills {key} of '
                      'shape {shape} in the model of {config} ({count} keys '
                      'unfilled)', config_name)
    _refuse_leftovers([key for key in state_dict if key not in used],
                      state_dict, 'the checkpoint key {key} of shape {shape} '
                      'has no place in the model of {config} ({count} keys '
                      'unused)', config_name)
    return OrderedDict((key, converted[key]) for key in target_state)


def _refuse_leftovers(keys: List[str], state: Dict, message: str,
                      config_name: str) -> None:
    """Raise a NetRL2ConversionError naming the first of ``keys`` (keys of
    ``state`` left unfilled or unused), if any."""
    if keys:
        raise NetRL2ConversionError(
            message.format(
                key=repr(keys[0]),
                shape=_shape(state[keys[0]]),
                config=config_name,
                count=len(keys)) + f': it does not fit {config_name}')


# Folds shared by the mappings.


def shared_first(unique_rank: int) -> Callable[[Tensor], Tensor]:
    """Reorders a per-element tensor from their order (the ``unique_rank``
    unique elements, then the shared ones) to ours (shared, then unique)."""

    def fold(tensor: Tensor) -> Tensor:
        return torch.cat([tensor[unique_rank:], tensor[:unique_rank]])

    return fold


def shared_first_inputs(unique_rank: int) -> Callable[[Tensor], Tensor]:
    """:func:`shared_first` on the input channels of 1 x 1 coefficients."""

    def fold(weight: Tensor) -> Tensor:
        return torch.cat([weight[:, unique_rank:], weight[:, :unique_rank]],
                         dim=1)

    return fold


def norm_after_biased_conv_entries(norm: nn.Module, norm_prefix: str,
                                   conv_bias: str) -> Iterator[Entry]:
    """A BatchNorm that follows a convolution with bias, the bias removed.

    ``BN(x + b)`` equals ``BN(x)`` with ``running_mean - b`` in eval mode, and
    ``BN(x)`` itself with batch statistics (the batch mean takes ``b`` along).
    """
    for name, tensor in norm.state_dict(keep_vars=True).items():
        key = f'{norm_prefix}.{name}'
        if name == 'running_mean':
            yield Entry(tensor, (key, conv_bias), torch.sub)
        else:
            yield Entry(tensor, (key, ))


def convert_net_rl2_checkpoint(
        src: str,
        dst: str,
        config: str,
        backbone_only: bool = False) -> Dict[str, Tensor]:
    """Convert a checkpoint of the authors' code for the model of a config.

    Args:
        src (str): Their checkpoint (see :func:`load_net_rl2_checkpoint`).
        dst (str): The mmpretrain checkpoint to write (``state_dict`` and
            ``meta``); its folder is created.
        config (str): The classification config whose model it is for.
        backbone_only (bool): Write the ``backbone.`` weights without the
            prefix, the checkpoint a detection config's
            ``init_cfg=dict(type='Pretrained', checkpoint=...)`` loads.
            Defaults to False.

    Returns:
        dict[str, Tensor]: The state dict written.

    Raises:
        NetRL2ConversionError: when ``src`` is not a checkpoint of their
            code or does not fit the model of ``config``.
    """
    from mmengine.config import Config

    from ..analysis import build_model_from_config
    from ..utils import classifier_to_backbone

    model = build_model_from_config(Config.fromfile(config))
    state_dict = convert_net_rl2(load_net_rl2_checkpoint(src), model,
                                 osp.basename(config))
    model.load_state_dict(state_dict, strict=True)
    if backbone_only:
        state_dict = classifier_to_backbone(state_dict)
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(
        dict(state_dict=state_dict,
             meta=dict(source=src, config=config, converter='net_rl2')), dst)
    return state_dict
