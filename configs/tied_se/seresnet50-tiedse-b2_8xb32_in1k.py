# SEResNet-50 with TiedSE (B = 2) in place of its SE modules (Tied Block
# Convolution, Table 3)
_base_ = './seresnet50_8xb32_in1k.py'

model = dict(backbone=dict(type='SEResNetTiedSE', se_blocks=2))

# Table 3 gives the size of the SE model only: the TiedSE model's is read as
# that size less the SE modules plus the TiedSE modules
paper_reference = dict(
    params=28.1e6 - 2.53e6 + 0.64e6, attention_params=0.64e6)
