# Learning Deeply Shared Filter Bases, Figure 3 (c): no BN after the bases,
# orthogonality regularization.
_base_ = ['./resnet34-s16u1-bn-orthoreg_1xb128_cifar100.py']

model = dict(backbone=dict(basis_cfg=dict(norm_cfg=None)))
