_base_ = [
    'mmpretrain::_base_/models/resnet34_cifar.py',
    '../_base_/datasets/cifar100_bs128.py',
    '../_base_/schedules/cifar_bs128_300e.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/orthogonality_regularization.py',
]
custom_imports = dict(imports=['sharedbasis_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='SharedBasisResNet_CIFAR',
        depth=34,
        basis_cfg=dict(shared_rank=32, unique_rank=1, num_bases=1),
        out_indices=(3,)),
    head=dict(num_classes=100, in_channels=512))

paper_reference = dict(
    source='Learning Deeply Shared Filter Bases, Table 2',
    params=7.73e6,
    flops=0.78e9,
    input_shape=(3, 32, 32))
