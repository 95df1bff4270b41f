# EfficientNet-B0, the SE baseline of TiedSE (Tied Block Convolution, Table 3):
# mmpretrain's own config, with the paper's counts; the TiedSE variants beside
# it inherit it
_base_ = 'mmpretrain::efficientnet/efficientnet-b0_8xb32_in1k.py'

custom_imports = dict(imports=['sharedbasis_mm'], allow_failed_imports=False)

# attention_params: the SE modules, EfficientNet's own (a quarter of the
# block's input channels, Swish)
paper_reference = dict(
    source='Tied Block Convolution, Table 3',
    params=5.3e6,
    flops=None,
    attention_params=0.65e6,
    input_shape=(3, 224, 224))
