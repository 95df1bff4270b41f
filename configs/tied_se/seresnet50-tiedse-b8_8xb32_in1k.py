# SEResNet-50 with TiedSE (B = 8) (Tied Block Convolution, Table 3)
_base_ = './seresnet50-tiedse-b4_8xb32_in1k.py'

model = dict(backbone=dict(se_blocks=8))

paper_reference = dict(
    params=28.1e6 - 2.53e6 + 0.04e6, attention_params=0.04e6)
