_base_ = [
    'mmpretrain::_base_/models/resnext50_32x4d.py',
    '../_base_/datasets/cifar100_bs128.py',
    '../_base_/schedules/cifar_bs128_300e.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['sharedbasis_mm'], allow_failed_imports=False)

# The authors' CIFAR-100 ResNext50_32x4d: the CIFAR stem (3 x 3 conv, BN,
# ReLU, no max pooling).
model = dict(
    backbone=dict(
        _delete_=True,
        type='SharedBasisResNeXtCifar',
        depth=50,
        groups=32,
        base_width=4,
        out_indices=(3,)),
    head=dict(num_classes=100, in_channels=2048))

paper_reference = dict(
    source='Learning Deeply Shared Filter Bases, Table 2',
    params=23.17e6,
    flops=1.36e9,
    input_shape=(3, 32, 32))
