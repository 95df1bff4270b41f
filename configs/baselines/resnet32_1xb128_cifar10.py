# He et al.'s plain CIFAR ResNet-32, the baseline of ResNet32-S16U1‡ in
# Table 3 of Learning Deeply Shared Filter Bases: the sibling without shared
# bases, so without the orthogonality regularization; data and schedule are
# the sibling's.
_base_ = '../shared_basis/resnet32-s16u1-double_1xb128_cifar10.py'

model = dict(
    backbone=dict(
        _delete_=True, type='ZeroPadResNet_CIFAR', depth=32))
custom_hooks = []

paper_reference = dict(params=0.46e6, flops=0.07e9)
