# TiedSENet-101-S: TiedResNet-101-S with a TiedSE module (ratio 16, B = 1) in
# every bottleneck (Tied Block Convolution, Table 1)
_base_ = ['./tiedresnet101-s_8xb32_in1k.py']

model = dict(backbone=dict(type='TiedSEResNet', se_ratio=16, se_blocks=1))

paper_reference = dict(params=26.4e6, flops=5.2e9)
