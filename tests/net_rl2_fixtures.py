"""The fixtures of the authors' code of Learning Deeply Shared Filter Bases.

``tests/data/net_rl2/<name>.json`` holds their model's state-dict layout
(``manifest``: key, shape, ``alias_of`` for the copies of a shared basis) and
``<name>_logits.pt`` the logits their code gives, in eval mode and in train
mode, on a seeded input with weights made by a seeded rule (both stated in
/work/shared/net_rl2/README.md, where the fixtures come from). The weights
and the input are made again here.
"""
import json
import math
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch
from torch import Tensor

DATA = osp.join(osp.dirname(osp.abspath(__file__)), 'data', 'net_rl2')


def manifest(name: str) -> List[Dict]:
    with open(osp.join(DATA, f'{name}.json')) as f:
        return json.load(f)['manifest']


def fixture_weight(index: int, key: str, shape: List[int]) -> Tensor:
    """The weight of entry ``index`` of a manifest, by the fixtures' rule."""
    generator = torch.Generator().manual_seed(1000 + index)
    if key.endswith('num_batches_tracked'):
        return torch.tensor(0)
    if key.endswith('running_mean'):
        return torch.randn(shape, generator=generator) * 0.1
    if key.endswith('running_var'):
        return torch.rand(shape, generator=generator) + 0.5
    if key.endswith('weight') and len(shape) == 1:
        return torch.rand(shape, generator=generator) + 0.5
    if key.endswith('bias'):
        return torch.randn(shape, generator=generator) * 0.1
    return torch.randn(shape, generator=generator) / math.sqrt(
        math.prod(shape[1:]))


def fixture_state_dict(name: str) -> Dict[str, Tensor]:
    """Their model's state dict with the fixture's weights (a shared basis
    under each of its keys, as their ``state_dict()`` gives it)."""
    state = OrderedDict()
    for index, entry in enumerate(manifest(name)):
        if 'alias_of' in entry:
            state[entry['key']] = state[entry['alias_of']]
        else:
            state[entry['key']] = fixture_weight(index, entry['key'],
                                                 entry['shape'])
    return state


def fixture_input(name: str) -> Tensor:
    size = 224 if name.startswith('ilsvrc') else 32
    return torch.randn((2, 3, size, size),
                       generator=torch.Generator().manual_seed(0))


def fixture_logits(name: str) -> Tuple[Tensor, Tensor]:
    """Their logits in eval mode and in train mode."""
    logits = torch.load(osp.join(DATA, f'{name}_logits.pt'))
    return logits['logits'], logits['logits_train']
