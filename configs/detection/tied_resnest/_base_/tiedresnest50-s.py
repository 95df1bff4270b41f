# What the TiedResNeSt50-S detectors of this folder change in mmdet's
# ResNeSt-50 configs (each inherits one with this file): the backbone tied
# (entry 1x1 and 3x3 convolutions TBC with B = 2, ResNeSt-fast's pool first),
# from the ImageNet backbone of
# configs/tied_resnest/tiedresnest50-s_8xb32_in1k.py; the test set also
# evaluated per occlusion ratio (Tied Block Convolution, Figure 7), on the
# boxes as for COCO's visible-part masks
custom_imports = dict(imports=['sharedbasis_mm'], allow_failed_imports=False)

tied_backbone = dict(
    type='TiedResNeSt',
    avd_first=True,
    entry_blocks=2,
    split_blocks=2,
    init_cfg=dict(
        checkpoint='work_dirs/backbones/tiedresnest50-s_8xb32_in1k.pth'))
occlusion_metric = dict(type='CocoOcclusionRatioMetric', instance_shape='box')

# the size of the paper's ImageNet backbone (fc included; see docs/tied_block_convolution.md)
paper_reference = dict(
    source='Tied Block Convolution, Table 1 (backbone)',
    params=16.5e6,
    flops=None,
    input_shape=(3, 800, 1333),
    part='backbone')
