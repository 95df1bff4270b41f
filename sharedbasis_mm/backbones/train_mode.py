"""``train()`` and ``eval()`` that return the module."""
import torch.nn as nn


class ReturnsSelfOnTrain(nn.Module):
    """Mixin: ``train()`` (and ``eval()``) return the module, as they do for
    every ``nn.Module``.

    mmdet's ``ResNet`` and mmpretrain's ``MobileNetV2`` override ``train``
    (to keep frozen stages and norms in eval mode) without returning
    anything, so ``backbone.eval()`` is None on them; put this mixin first
    in the bases of a backbone derived from them.
    """

    def train(self, mode: bool = True) -> 'ReturnsSelfOnTrain':
        super().train(mode)
        return self
