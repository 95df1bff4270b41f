# SEResNet-50, the SE baseline of TiedSE (Tied Block Convolution, Table 3):
# mmpretrain's own config, with the paper's counts; the TiedSE variants beside
# it inherit it
_base_ = 'mmpretrain::seresnet/seresnet50_8xb32_in1k.py'

custom_imports = dict(imports=['sharedbasis_mm'], allow_failed_imports=False)

# attention_params: the SE modules (reduction ratio 16)
paper_reference = dict(
    source='Tied Block Convolution, Table 3',
    params=28.1e6,
    flops=None,
    attention_params=2.53e6,
    input_shape=(3, 224, 224))
