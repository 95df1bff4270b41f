"""The base of the project's ResNets: mmdet's ResNet with the training
defaults of a classifier, mmpretrain's stochastic depth and the argument
checks they all share."""
from typing import List, Optional, Sequence

import torch
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks import DropPath
from mmdet.models.backbones import resnet as mmdet_resnet
from mmengine.model import constant_init
from torch import Tensor, nn

from ..utils.validation import (check_choice, check_int, check_number,
                                check_type, is_integer)
from .train_mode import ReturnsSelfOnTrain

STYLES = ('pytorch', 'caffe')


class DropPathMixin:
    """Stochastic depth for mmdet's residual blocks: ``BasicBlock``,
    ``Bottleneck`` and any subclass of them.

    The block's forward, with the residual branch passed through
    ``self.drop_path`` before the identity is added, as in mmpretrain's
    blocks. ``drop_path`` is the identity until it is set (:class:`BaseResNet`
    sets it from its ``drop_path_rate``); mmcv's ``DropPath`` is the identity
    in eval mode. The branch is mmdet's: each convolution and its norm, a ReLU
    between them, and a Bottleneck's plugins after each convolution;
    ``with_cp`` checkpoints the block as in mmdet.

    Put it first in the bases: ``class Block(DropPathMixin, Bottleneck)``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.drop_path: nn.Module = nn.Identity()

    def residual_branch(self, x: Tensor) -> Tensor:
        """The residual branch of the block, without the identity."""
        num_convs = 3 if isinstance(self, mmdet_resnet.Bottleneck) else 2
        with_plugins = getattr(self, 'with_plugins', False)
        out = x
        for i in range(1, num_convs + 1):
            out = getattr(self, f'norm{i}')(getattr(self, f'conv{i}')(out))
            if i < num_convs:
                out = self.relu(out)
            if with_plugins:
                out = self.forward_plugin(
                    out, getattr(self, f'after_conv{i}_plugin_names'))
        return out

    def forward(self, x: Tensor) -> Tensor:
        """``relu(drop_path(residual_branch(x)) + identity)``, the identity
        being ``downsample(x)`` where the block has one."""

        def residual_sum(x: Tensor) -> Tensor:
            out = self.drop_path(self.residual_branch(x))
            identity = x if self.downsample is None else self.downsample(x)
            out += identity  # in place, as mmdet's blocks add
            return out

        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(residual_sum, x, use_reentrant=False)
        else:
            out = residual_sum(x)
        return self.relu(out)


class BasicBlock(DropPathMixin, mmdet_resnet.BasicBlock):
    """mmdet's ``BasicBlock`` with stochastic depth
    (:class:`DropPathMixin`)."""


class Bottleneck(DropPathMixin, mmdet_resnet.Bottleneck):
    """mmdet's ``Bottleneck`` with stochastic depth
    (:class:`DropPathMixin`)."""


class BaseResNet(ReturnsSelfOnTrain, mmdet_resnet.ResNet):
    """mmdet's ``ResNet`` as the base of :class:`SharedBasisResNet`,
    :class:`SharedBasisResNeXt` and :class:`TiedResNet`, deciding in one
    place what they do alike.

    - Training defaults: ``norm_eval=False`` and ``frozen_stages=-1``, the
      defaults of mmpretrain's ``ResNet``, so a classifier built from a config
      that does not set them trains every norm. mmdet's ``ResNet`` defaults
      to ``norm_eval=True``, a detection setting that mmdet's detector base
      configs (``faster-rcnn_r50_fpn.py`` and the others) set explicitly with
      ``frozen_stages=1``; the detection configs inherit them from there.
    - ``drop_path_rate``: mmpretrain's stochastic depth, on the residual
      branch of every block (its ``drop_path``, see :class:`DropPathMixin`),
      at a rate rising linearly over the blocks from 0 to ``drop_path_rate``
      as in mmpretrain's ``ResNet``.
    - ``zero_init_residual``: the last norm of every residual block (``norm2``
      of a BasicBlock, ``norm3`` of a Bottleneck, subclasses included) is zero
      after :meth:`init_weights`, so each block starts as the identity,
      unless the weights come from ``init_cfg`` or ``pretrained``, as in
      mmdet. mmdet's ``ResNet`` does this only for its own two block classes.
    - ``out_indices`` may count from the last stage (``-1`` is the last), as
      the backbones of mmpretrain that accept negative indices read them.
    - ``train()`` and ``eval()`` return the module (mmdet's return None).
    - Bad arguments raise an error naming the argument, its value and what
      was expected, before anything is built; ``dcn`` is refused, since none
      of the project's blocks has a deformable convolution.

    Its own blocks (``arch_settings``) are mmdet's with stochastic depth
    (:class:`BasicBlock`, :class:`Bottleneck`): built directly, it is the
    ResNet of mmdet's and mmpretrain's ``arch_settings``.

    Args:
        depth (int): A key of ``arch_settings``.
        num_stages (int): Residual stages. Defaults to 4.
        out_indices (Sequence[int]): Stages whose output is returned,
            negative ones counted from the last. Defaults to (0, 1, 2, 3).
        frozen_stages (int): Stages frozen (stem at 0), -1 for none.
            Defaults to -1.
        norm_eval (bool): Keep the norms in eval mode while training.
            Defaults to False.
        drop_path_rate (float): Stochastic depth rate in [0, 1): the
            probability of dropping the residual branch of the last block
            for a sample in training, the blocks before it rising linearly
            to it from 0, as in mmpretrain's ``ResNet``. The blocks must be
            :class:`DropPathMixin` subclasses for a rate above 0.
            Defaults to 0.
        **kwargs: The other arguments of mmdet's ``ResNet`` (``dcn`` must
            stay None).
    """

    arch_settings = {
        18: (BasicBlock, (2, 2, 2, 2)),
        34: (BasicBlock, (3, 4, 6, 3)),
        50: (Bottleneck, (3, 4, 6, 3)),
        101: (Bottleneck, (3, 4, 23, 3)),
        152: (Bottleneck, (3, 8, 36, 3))
    }

    def __init__(self,
                 depth: int,
                 num_stages: int = 4,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 drop_path_rate: float = 0.,
                 **kwargs) -> None:
        self._check_depth(depth)
        out_indices = self._check_stage_args(depth, num_stages, out_indices,
                                             frozen_stages, kwargs)
        self._check_block_args(depth, drop_path_rate, kwargs.get('dcn'))
        self._default_init = (kwargs.get('init_cfg') is None
                              and kwargs.get('pretrained') is None)
        super().__init__(
            depth,
            num_stages=num_stages,
            out_indices=out_indices,
            frozen_stages=frozen_stages,
            norm_eval=norm_eval,
            **kwargs)
        self.drop_path_rate = drop_path_rate
        if drop_path_rate > 0:
            self._set_drop_path_rates(drop_path_rate)

    def _check_depth(self, depth: int) -> None:
        """Raise a ValueError unless ``depth`` is in ``arch_settings``."""
        check_choice(
            'depth', depth, sorted(self.arch_settings),
            owner=type(self).__name__)

    def _check_stage_args(self, depth: int, num_stages: int,
                          out_indices: Sequence[int], frozen_stages: int,
                          kwargs: dict) -> tuple:
        """Check the stage arguments; return ``out_indices`` made
        non-negative."""
        name = type(self).__name__
        max_stages = min(len(self.arch_settings[depth][1]), 4)
        check_int('num_stages', num_stages, 1, max_stages, owner=name)
        for arg, default in (('strides', (1, 2, 2, 2)),
                             ('dilations', (1, 1, 1, 1))):
            value = tuple(kwargs.get(arg, default))
            if len(value) != num_stages:
                raise ValueError(
                    f'{name}: {arg}={value} must have one entry per stage; '
                    f'expected {num_stages} (num_stages) entries')
        check_choice(
            'style', kwargs.get('style', 'pytorch'), STYLES, owner=name)
        check_type('out_indices', out_indices, (tuple, list), owner=name)
        if not all(
                is_integer(i) and -num_stages <= i < num_stages
                for i in out_indices):
            raise ValueError(
                f'{name}: out_indices={out_indices!r} out of range; '
                f'expected a sequence of stage indices in '
                f'[-{num_stages}, {num_stages}) for num_stages={num_stages}')
        check_int('frozen_stages', frozen_stages, owner=name)
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(
                f'{name}: frozen_stages={frozen_stages!r} out of range; '
                f'expected -1 (none), 0 (the stem) up to '
                f'num_stages={num_stages}')
        return tuple(i % num_stages for i in out_indices)

    def _check_block_args(self, depth: int, drop_path_rate: float,
                          dcn: Optional[dict]) -> None:
        """Check what the blocks take: the stochastic depth rate and no
        deformable convolution."""
        name = type(self).__name__
        if dcn is not None:
            raise ValueError(
                f'{name}: dcn={dcn!r} is not supported: none of the '
                f'project\'s blocks has a deformable convolution; expected '
                f'dcn=None')
        check_number('drop_path_rate', drop_path_rate, 0., owner=name)
        if drop_path_rate >= 1:
            raise ValueError(
                f'{name}: drop_path_rate={drop_path_rate!r} out of range: '
                f'the last block would always drop its branch; expected a '
                f'probability >= 0 and < 1')
        block = self.arch_settings[depth][0]
        if drop_path_rate > 0 and not issubclass(block, DropPathMixin):
            raise ValueError(
                f'{name}: drop_path_rate={drop_path_rate!r} is not supported '
                f'by its blocks ({block.__name__}, which has no '
                f'DropPathMixin); expected 0')

    def _set_drop_path_rates(self, drop_path_rate: float) -> None:
        """mmpretrain's stochastic depth decay rule: the rate rises linearly
        from 0 at the first block to ``drop_path_rate`` at the last block of
        the whole architecture (of ``depth``, whatever ``num_stages``)."""
        total = sum(self.arch_settings[self.depth][1])
        rates = torch.linspace(0, drop_path_rate, total).tolist()
        for block, rate in zip(self.residual_blocks(), rates):
            if rate > 0:
                block.drop_path = DropPath(rate)

    def residual_blocks(self) -> List[nn.Module]:
        """The residual blocks of every stage, in forward order."""
        return [
            block for name in self.res_layers
            for block in getattr(self, name)
        ]

    def _residual_last_norms(self) -> Sequence[nn.Module]:
        """The last norm of each residual block: ``norm2`` of a BasicBlock
        (after its second convolution, before the addition), ``norm3`` of a
        Bottleneck."""
        norms = []
        for module in self.modules():
            if isinstance(module, mmdet_resnet.Bottleneck):
                norms.append(module.norm3)
            elif isinstance(module, mmdet_resnet.BasicBlock):
                norms.append(module.norm2)
        return norms

    def init_weights(self) -> None:
        """mmdet's initialisation, then zero the last norm of every residual
        block if ``zero_init_residual`` (and no weights are loaded)."""
        super().init_weights()
        if self.zero_init_residual and self._default_init:
            for norm in self._residual_last_norms():
                constant_init(norm, 0)
