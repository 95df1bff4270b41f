"""Efficient channel attention (ECA; Wang et al., ECA-Net, CVPR 2020)."""
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..registry import MODELS
from ..utils.validation import check_positive_int


@MODELS.register_module()
class ECALayer(nn.Module):
    """Channel attention by a 1-D convolution across the pooled channels.

    ``x * sigmoid(conv1d(avgpool(x)))``: the global average of each channel,
    a ``kernel_size`` convolution (no bias) along the channel axis, and a
    sigmoid that rescales the channels. It has ``kernel_size`` parameters
    whatever the width; the authors' MobileNetV2-Shared‡ (Learning Deeply
    Shared Filter Bases) puts one in each of its sharing blocks.

    Args:
        kernel_size (int): Odd size of the convolution across channels.
            Defaults to 3.
    """

    def __init__(self, kernel_size: int = 3) -> None:
        super().__init__()
        check_positive_int('kernel_size', kernel_size, owner='ECALayer')
        if kernel_size % 2 == 0:
            raise ValueError(f'ECALayer: kernel_size must be odd to keep the '
                             f'channels, got kernel_size={kernel_size}')
        self.conv = nn.Conv1d(1,
                              1,
                              kernel_size,
                              padding=(kernel_size - 1) // 2,
                              bias=False)

    def forward(self, x: Tensor) -> Tensor:
        weights = F.adaptive_avg_pool2d(x, 1).flatten(1).unsqueeze(1)
        weights = self.conv(weights).sigmoid()
        return x * weights.transpose(1, 2).unsqueeze(-1)
