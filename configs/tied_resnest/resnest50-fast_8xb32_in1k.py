# ResNeSt-50-fast (2s1x64d), the baseline of TiedResNeSt50-S in Tied Block
# Convolution, Table 1: mmdet's ResNeSt-50 blocks (split attention, radix 2,
# deep stem, average-pool shortcut) with the average pool of a strided block
# before its 3x3 convolution (avd_first, the "fast" variant, which mmdet's
# ResNeSt does not have), no convolution tied; on the paper's ImageNet
# schedule, as the TiedResNets
_base_ = '../tied/tiedresnet50_8xb32_in1k.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='TiedResNeSt',
        depth=50,
        stem_channels=64,
        radix=2,
        reduction_factor=4,
        avd_first=True,
        entry_blocks=1,
        split_blocks=1,
        out_indices=(3, )))

paper_reference = dict(params=27.5e6, flops=4.4e9)
