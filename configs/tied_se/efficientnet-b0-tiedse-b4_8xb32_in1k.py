# EfficientNet-B0 with TiedSE (B = 4) (Tied Block Convolution, Table 3)
_base_ = './efficientnet-b0-tiedse-b2_8xb32_in1k.py'

model = dict(backbone=dict(se_blocks=4))

paper_reference = dict(
    params=5.3e6 - 0.65e6 + 0.04e6, attention_params=0.04e6)
