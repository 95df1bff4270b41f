# TiedResNet-50 whose mixer reads the concatenation of the parts instead of
# their element-wise sum (Tied Block Convolution, Table 6)
_base_ = ['./tiedresnet50_8xb32_in1k.py']

model = dict(backbone=dict(mixer='cat'))

paper_reference = dict(
    source='Tied Block Convolution, Table 6', params=26.7e6, flops=None)
