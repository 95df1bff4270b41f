_base_ = [
    'mmpretrain::_base_/models/resnext50_32x4d.py',
    '../_base_/datasets/cifar100_bs128.py',
    '../_base_/schedules/cifar_bs128_300e.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/orthogonality_regularization.py',
]
custom_imports = dict(imports=['sharedbasis_mm'], allow_failed_imports=False)

# The authors' ResNext50_32x4d_SingleShared(64, 4): shared bases in 16
# groups (64 / 4), unique elements in 4 / 4 = 1 group at first.
model = dict(
    backbone=dict(
        _delete_=True,
        type='SharedBasisResNeXt_CIFAR',
        depth=50,
        groups=32,
        base_width=4,
        shared_rank=64,
        unique_rank=4,
        shared_groups=16,
        unique_groups=1,
        out_indices=(3,)),
    head=dict(num_classes=100, in_channels=2048))

paper_reference = dict(
    source='Learning Deeply Shared Filter Bases, Table 2',
    params=19.3e6,
    flops=1.19e9,
    input_shape=(3, 32, 32))
