# Learning Deeply Shared Filter Bases, Figure 3 (b): BN after the bases, no
# orthogonality regularization.
_base_ = ['./resnet34-s16u1-bn-orthoreg_1xb128_cifar100.py']

custom_hooks = [dict(type='GradientFlowHook', interval=10)]
