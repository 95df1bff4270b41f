"""The base of the project's ResNets: mmdet's ResNet with the training
defaults of a classifier and the argument checks they all share."""
from typing import Sequence

from mmdet.models.backbones.resnet import BasicBlock, Bottleneck, ResNet
from mmengine.model import constant_init
from torch import nn

from .train_mode import ReturnsSelfOnTrain

STYLES = ('pytorch', 'caffe')


class BaseResNet(ReturnsSelfOnTrain, ResNet):
    """mmdet's ``ResNet`` as the base of :class:`SharedBasisResNet` and
    :class:`TiedResNet`, deciding in one place what they do alike.

    - Training defaults: ``norm_eval=False`` and ``frozen_stages=-1``, the
      defaults of mmpretrain's ``ResNet``, so a classifier built from a config
      that does not set them trains every norm. mmdet's ``ResNet`` defaults
      to ``norm_eval=True``, a detection setting that mmdet's detector base
      configs (``faster-rcnn_r50_fpn.py`` and the others) set explicitly with
      ``frozen_stages=1``; the detection configs inherit them from there.
    - ``zero_init_residual``: the last norm of every residual block (``norm2``
      of a BasicBlock, ``norm3`` of a Bottleneck, subclasses included) is zero
      after :meth:`init_weights`, so each block starts as the identity,
      unless the weights come from ``init_cfg`` or ``pretrained``, as in
      mmdet. mmdet's ``ResNet`` does this only for its own two block classes.
    - ``out_indices`` may count from the last stage (``-1`` is the last), as
      the backbones of mmpretrain that accept negative indices read them.
    - ``train()`` and ``eval()`` return the module (mmdet's return None).
    - Bad arguments raise a ValueError naming the argument, its value and
      what was expected, before anything is built.

    Args:
        depth (int): A key of ``arch_settings``.
        num_stages (int): Residual stages. Defaults to 4.
        out_indices (Sequence[int]): Stages whose output is returned,
            negative ones counted from the last. Defaults to (0, 1, 2, 3).
        frozen_stages (int): Stages frozen (stem at 0), -1 for none.
            Defaults to -1.
        norm_eval (bool): Keep the norms in eval mode while training.
            Defaults to False.
        drop_path_rate (float): mmpretrain's stochastic depth; mmdet's blocks
            have none, so only 0 is accepted. Defaults to 0.
        **kwargs: The other arguments of mmdet's ``ResNet``.
    """

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
                                             frozen_stages, drop_path_rate,
                                             kwargs)
        self._default_init = (kwargs.get('init_cfg') is None
                              and kwargs.get('pretrained') is None)
        super().__init__(
            depth,
            num_stages=num_stages,
            out_indices=out_indices,
            frozen_stages=frozen_stages,
            norm_eval=norm_eval,
            **kwargs)

    def _check_depth(self, depth: int) -> None:
        """Raise a ValueError unless ``depth`` is in ``arch_settings``."""
        if depth not in self.arch_settings:
            raise ValueError(f'{type(self).__name__}: unknown depth='
                             f'{depth!r}; expected one of '
                             f'{sorted(self.arch_settings)}')

    def _check_stage_args(self, depth: int, num_stages: int,
                          out_indices: Sequence[int], frozen_stages: int,
                          drop_path_rate: float, kwargs: dict) -> tuple:
        """Check the stage arguments; return ``out_indices`` made
        non-negative."""
        name = type(self).__name__
        max_stages = len(self.arch_settings[depth][1])
        if not isinstance(num_stages, int) or not 1 <= num_stages <= min(
                max_stages, 4):
            raise ValueError(f'{name}: num_stages={num_stages!r} out of '
                             f'range; expected an integer in [1, '
                             f'{min(max_stages, 4)}] for depth={depth}')
        for arg, default in (('strides', (1, 2, 2, 2)),
                             ('dilations', (1, 1, 1, 1))):
            value = tuple(kwargs.get(arg, default))
            if len(value) != num_stages:
                raise ValueError(
                    f'{name}: {arg}={value} must have one entry per stage; '
                    f'expected {num_stages} (num_stages) entries')
        style = kwargs.get('style', 'pytorch')
        if style not in STYLES:
            raise ValueError(f'{name}: unknown style={style!r}; expected '
                             f'one of {STYLES}')
        if not isinstance(out_indices, (tuple, list)) or not all(
                isinstance(i, int) and -num_stages <= i < num_stages
                for i in out_indices):
            raise ValueError(
                f'{name}: out_indices={out_indices!r} out of range; '
                f'expected a sequence of stage indices in '
                f'[-{num_stages}, {num_stages}) for num_stages={num_stages}')
        if not isinstance(frozen_stages,
                          int) or not -1 <= frozen_stages <= num_stages:
            raise ValueError(
                f'{name}: frozen_stages={frozen_stages!r} out of range; '
                f'expected -1 (none), 0 (the stem) up to '
                f'num_stages={num_stages}')
        if drop_path_rate != 0:
            raise ValueError(
                f'{name}: drop_path_rate={drop_path_rate!r} is not supported: '
                f'its blocks (mmdet\'s BasicBlock and Bottleneck) have no '
                f'stochastic depth; expected 0')
        return tuple(i % num_stages for i in out_indices)

    def _residual_last_norms(self) -> Sequence[nn.Module]:
        """The last norm of each residual block: ``norm2`` of a BasicBlock
        (after its second convolution, before the addition), ``norm3`` of a
        Bottleneck."""
        norms = []
        for module in self.modules():
            if isinstance(module, Bottleneck):
                norms.append(module.norm3)
            elif isinstance(module, BasicBlock):
                norms.append(module.norm2)
        return norms

    def init_weights(self) -> None:
        """mmdet's initialisation, then zero the last norm of every residual
        block if ``zero_init_residual`` (and no weights are loaded)."""
        super().init_weights()
        if self.zero_init_residual and self._default_init:
            for norm in self._residual_last_norms():
                constant_init(norm, 0)
