# The authors' CIFAR-100 ResNext50_32x4d (Table 2's baseline): their
# ResNext50_32x4d_SingleShared without shared bases, so without the
# orthogonality regularization; data and schedule are the sibling's.
_base_ = '../shared_basis/resnext50-32x4d-s64u4_1xb128_cifar100.py'

model = dict(
    backbone=dict(
        shared_rank=0, unique_rank=0, shared_groups=1, unique_groups=1))
custom_hooks = []

paper_reference = dict(params=23.17e6, flops=1.36e9)
