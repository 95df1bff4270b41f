_base_ = [
    'mmpretrain::_base_/models/resnet18_cifar.py',
    '../_base_/datasets/cifar10_bs128.py',
    '../_base_/schedules/cifar_bs128_300e.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/orthogonality_regularization.py',
]
custom_imports = dict(imports=['sharedbasis_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='SharedBasisResNet_CIFAR',
        num_stages=3,
        base_channels=16,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(2,),
        shortcut_type='pad',
        basis_cfg=dict(shared_rank=16, unique_rank=1, num_bases=1),
        depth=56),
    head=dict(num_classes=10, in_channels=64))

paper_reference = dict(
    source='Learning Deeply Shared Filter Bases, Table 3',
    params=0.27e6,
    flops=0.15e9,
    input_shape=(3, 32, 32))
