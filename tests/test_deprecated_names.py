"""Configs of the previous layout (registered names before the *_CIFAR
renames, SharedBasisResNet's sharing arguments before basis_cfg) build the
same models as the new ones, with a FutureWarning naming the new form."""
import warnings

import pytest
from mmengine.config import Config
from mmengine.registry import Registry

import sharedbasis_mm  # noqa: F401
from sharedbasis_mm.analysis import build_model_from_config, count_parameters
from sharedbasis_mm.utils.deprecation import (register_deprecated_alias,
                                              warn_deprecated)

CIFAR3 = dict(num_stages=3, base_channels=16, strides=(1, 2, 2),
              dilations=(1, 1, 1), out_indices=(2, ), shortcut_type='pad')
DENSENET = dict(arch=dict(growth_rate=4, depths=[2, 2], init_channels=8),
                shared_rank=3, unique_rank=1)
RESNEXT = dict(depth=50, groups=4, base_width=4, base_channels=16,
               shared_rank=8, unique_rank=4, shared_groups=4,
               out_indices=(3, ))

# (the previous backbone config, the new one, what the warnings name)
LAYOUTS = [
    (dict(type='SharedBasisResNetCifar', depth=20, shared_rank=4,
          unique_rank=1, num_bases=2, basis_norm_cfg=None, **CIFAR3),
     dict(type='SharedBasisResNet_CIFAR', depth=20,
          basis_cfg=dict(shared_rank=4, unique_rank=1, num_bases=2,
                         norm_cfg=None), **CIFAR3),
     ['`SharedBasisResNetCifar` is deprecated; use '
      '`SharedBasisResNet_CIFAR`'] + [
          f'`SharedBasisResNetCifar({old}=...)` is deprecated; use '
          f'`basis_cfg=dict({new}=...)`'
          for old, new in (('shared_rank', 'shared_rank'),
                           ('unique_rank', 'unique_rank'),
                           ('num_bases', 'num_bases'),
                           ('basis_norm_cfg', 'norm_cfg'))
      ]),
    (dict(type='SharedBasisResNet', depth=50, base_channels=8, share='all',
          out_indices=(3, )),
     dict(type='SharedBasisResNet', depth=50, base_channels=8,
          basis_cfg=dict(share='all'), out_indices=(3, )),
     ['`SharedBasisResNet(share=...)` is deprecated; use '
      '`basis_cfg=dict(share=...)`']),
    (dict(type='SharedBasisDenseNetCifar', **DENSENET),
     dict(type='SharedBasisDenseNet_CIFAR', **DENSENET),
     ['`SharedBasisDenseNetCifar` is deprecated; use '
      '`SharedBasisDenseNet_CIFAR`']),
    (dict(type='SharedBasisResNeXtCifar', **RESNEXT),
     dict(type='SharedBasisResNeXt_CIFAR', **RESNEXT),
     ['`SharedBasisResNeXtCifar` is deprecated; use '
      '`SharedBasisResNeXt_CIFAR`']),
]


def build_classifier(backbone):
    cfg = Config(
        dict(
            default_scope='mmpretrain',
            model=dict(
                type='ImageClassifier',
                backbone=backbone,
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LinearClsHead', num_classes=10,
                          in_channels=16))))
    return build_model_from_config(cfg)


def shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize('old,new,messages', LAYOUTS)
def test_previous_layout_builds_the_same_model_with_a_warning(
        old, new, messages):
    with warnings.catch_warnings():
        warnings.simplefilter('error', FutureWarning)
        current = build_classifier(new)
    with pytest.warns(FutureWarning) as record:
        previous = build_classifier(old)
    assert [str(w.message) for w in record
            if w.category is FutureWarning] == messages
    assert shapes(previous.backbone) == shapes(current.backbone)
    assert count_parameters(previous) == count_parameters(current)
    # the alias is the new class under its previous name
    assert isinstance(previous.backbone, type(current.backbone))


def test_warn_deprecated_and_an_alias_in_a_registry():
    with pytest.warns(FutureWarning, match='^`old` is deprecated; use `new`$'):
        warn_deprecated('old', 'new')
    registry = Registry('toy')

    @registry.register_module()
    class Renamed:

        def __init__(self, value=1):
            self.value = value

    alias = register_deprecated_alias(registry, 'Before', Renamed)
    assert alias.__name__ == 'Before' and issubclass(alias, Renamed)
    with pytest.warns(FutureWarning,
                      match='`Before` is deprecated; use `Renamed`'):
        built = registry.build(dict(type='Before', value=3))
    assert isinstance(built, Renamed) and built.value == 3
