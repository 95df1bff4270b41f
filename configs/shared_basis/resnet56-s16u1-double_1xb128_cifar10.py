# ResNet56-S16U1‡: two bases per residual group (Learning Deeply Shared Filter
# Bases, Table 3).
_base_ = ['./resnet56-s16u1_1xb128_cifar10.py']

model = dict(backbone=dict(basis_cfg=dict(num_bases=2)))

paper_reference = dict(params=0.31e6)
