# ResNet32-S16U1‡: two bases per residual group (Learning Deeply Shared Filter
# Bases, Table 3).
_base_ = ['./resnet56-s16u1-double_1xb128_cifar10.py']

model = dict(backbone=dict(depth=32))

paper_reference = dict(params=0.24e6, flops=0.08e9)
