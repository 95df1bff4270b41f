# TiedSENet-101: TiedResNet-101 with a TiedSE module (ratio 16, B = 1) in
# every bottleneck (Tied Block Convolution, Table 1)
_base_ = ['./tiedresnet101_8xb32_in1k.py']

model = dict(backbone=dict(type='TiedSEResNet', se_ratio=16, se_blocks=1))

paper_reference = dict(params=41.8e6, flops=9.1e9)
