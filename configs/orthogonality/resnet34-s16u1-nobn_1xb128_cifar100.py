# Learning Deeply Shared Filter Bases, Figure 3 (a): neither BN after the bases
# nor orthogonality regularization.
_base_ = ['./resnet34-s16u1-bn_1xb128_cifar100.py']

model = dict(backbone=dict(basis_cfg=dict(norm_cfg=None)))
