# TiedResNeSt50-S (Tied Block Convolution, Figure 4c, Table 1): ResNeSt-50-fast
# with its entry 1x1 and all its 3x3 (split-attention) convolutions TBC with B
# = 2
_base_ = './resnest50-fast_8xb32_in1k.py'

model = dict(backbone=dict(entry_blocks=2, split_blocks=2))

paper_reference = dict(params=16.5e6, flops=3.6e9)
