# TiedResNet-101, 4s x 32w (Tied Block Convolution, Table 1)
_base_ = ['./tiedresnet50_8xb32_in1k.py']

model = dict(backbone=dict(depth=101))

paper_reference = dict(params=39.4e6, flops=8.6e9)
