"""Turn an mmpretrain classifier checkpoint into a backbone checkpoint."""
from collections import OrderedDict
from typing import Dict

from torch import Tensor

CLASSIFIER_PREFIXES = ('backbone', 'neck', 'head', 'data_preprocessor')


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
