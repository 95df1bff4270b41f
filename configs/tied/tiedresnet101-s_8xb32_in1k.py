# TiedResNet-101-S, 4s x 18w (Tied Block Convolution, Table 1)
_base_ = ['./tiedresnet50-s_8xb32_in1k.py']

model = dict(backbone=dict(depth=101))

paper_reference = dict(params=24.0e6, flops=4.8e9)
