# The authors' CIFAR-100 DenseNet121 (Table 2's baseline): their
# DenseNet121_SingleShared without shared bases, so without the
# orthogonality regularization; data and schedule are the sibling's.
_base_ = '../shared_basis/densenet121-s16u1_1xb128_cifar100.py'

model = dict(
    backbone=dict(shared_rank=0, unique_rank=0, basis_indices=None))
custom_hooks = []

paper_reference = dict(params=7.05e6, flops=0.91e9)
