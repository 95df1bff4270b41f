"""Every component is found by type= from mmdet's and mmpretrain's builders.

The config-level test runs in a fresh interpreter, so that the package is
imported by ``custom_imports`` alone, as a user's config imports it.
"""
import subprocess
import sys
import textwrap

import pytest

COMPONENTS = {
    'TBC': dict(in_channels=8, out_channels=8, kernel_size=3, blocks=2),
    'TGC': dict(in_channels=8, out_channels=8, kernel_size=3, blocks=2,
                groups=2),
    'TFC': dict(in_features=8, out_features=8, blocks=2),
    'SharedBasisConv': dict(in_channels=8, out_channels=8, kernel_size=3,
                            shared_rank=3, unique_rank=1),
    'BasisConv': dict(in_channels=8, out_channels=4, kernel_size=3),
    'SharedBasisResNet': dict(depth=18, basis_cfg=dict(shared_rank=4),
                              base_channels=8),
    'SharedBasisResNet_CIFAR': dict(depth=18, basis_cfg=dict(shared_rank=4),
                                    base_channels=8),
    'SharedBasisMobileNetV2': dict(widen_factor=0.25),
    'ZeroPadResNet_CIFAR': dict(depth=20),
    'SharedBasisDenseNet': dict(
        arch=dict(growth_rate=4, depths=[1, 1], init_channels=8),
        shared_rank=2, unique_rank=1),
    'SharedBasisDenseNet_CIFAR': dict(
        arch=dict(growth_rate=4, depths=[1, 1], init_channels=8),
        shared_rank=2, unique_rank=1),
    'SharedBasisResNeXt': dict(depth=50, groups=4, base_width=4,
                               base_channels=16, shared_rank=8,
                               unique_rank=4, shared_groups=4),
    'SharedBasisResNeXt_CIFAR': dict(depth=50, groups=4, base_width=4,
                                     base_channels=16, shared_rank=8,
                                     unique_rank=4, shared_groups=4),
    # the previous names, deprecated
    'SharedBasisResNetCifar': dict(depth=18, basis_cfg=dict(shared_rank=4),
                                   base_channels=8),
    'SharedBasisDenseNetCifar': dict(
        arch=dict(growth_rate=4, depths=[1, 1], init_channels=8),
        shared_rank=2, unique_rank=1),
    'SharedBasisResNeXtCifar': dict(depth=50, groups=4, base_width=4,
                                    base_channels=16, shared_rank=8,
                                    unique_rank=4, shared_groups=4),
}


@pytest.mark.parametrize('scope', ['mmdet', 'mmpretrain'])
def test_config_with_custom_imports_finds_every_component(tmp_path, scope):
    config = tmp_path / 'config.py'
    config.write_text(textwrap.dedent(f"""
        custom_imports = dict(
            imports=['sharedbasis_mm'], allow_failed_imports=False)
        default_scope = '{scope}'
        components = {COMPONENTS!r}
    """))
    script = textwrap.dedent(f"""
        from mmengine.config import Config
        from {scope}.registry import MODELS
        cfg = Config.fromfile({str(config)!r})
        for name, args in cfg.components.items():
            module = MODELS.build(dict(type=name, **args))
            print(name, type(module).__module__)
    """)
    result = subprocess.run([sys.executable, '-c', script],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(COMPONENTS)
    assert all(line.split()[1].startswith('sharedbasis_mm.')
               for line in lines)


def test_conv_layers_through_mmcv_and_mmdet_conv_cfg():
    import torch
    from mmcv.cnn import ConvModule
    from mmdet.models.backbones import ResNet

    import sharedbasis_mm  # noqa: F401
    module = ConvModule(8, 8, 3, padding=1,
                        conv_cfg=dict(type='TBC', blocks=4),
                        norm_cfg=dict(type='BN'))
    assert module(torch.randn(1, 8, 6, 6)).shape == (1, 8, 6, 6)
    basis_module = ConvModule(8, 4, 1, conv_cfg=dict(type='BasisConv'),
                              norm_cfg=dict(type='BN'))
    basis_module.init_weights()
    assert basis_module.in_channels == 8 and basis_module.out_channels == 4
    # Every convolution of mmdet's ResNet, the stem included (4 channels in).
    resnet = ResNet(depth=18, in_channels=4, base_channels=8,
                    conv_cfg=dict(type='TBC', blocks=2))
    assert type(resnet.conv1).__name__ == 'TiedBlockConv2d'
    assert type(resnet.layer1[0].conv1).__name__ == 'TiedBlockConv2d'
    assert [o.shape[1] for o in resnet(torch.randn(2, 4, 32, 32))
            ] == [8, 16, 32, 64]
