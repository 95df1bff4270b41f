# He et al.'s plain CIFAR ResNet-56 (16/32/64 channels, zero-pad
# shortcuts), the baseline of Table 3 of Learning Deeply Shared Filter
# Bases: the sibling ResNet56-S16U1 without shared bases, so without the
# orthogonality regularization; data and schedule are the sibling's.
_base_ = '../shared_basis/resnet56-s16u1_1xb128_cifar10.py'

model = dict(
    backbone=dict(
        _delete_=True, type='ZeroPadResNet_CIFAR', depth=56))
custom_hooks = []

paper_reference = dict(params=0.85e6, flops=0.16e9)
