# TiedResNet-50-S, 4s x 18w (Tied Block Convolution, Table 1); the block
# numbers of the parts must divide the part width 18 of the first stage
_base_ = ['./tiedresnet50_8xb32_in1k.py']

model = dict(backbone=dict(base_width=18, split_blocks=(1, 2, 2, 2)))

paper_reference = dict(params=13.9e6, flops=2.5e9)
