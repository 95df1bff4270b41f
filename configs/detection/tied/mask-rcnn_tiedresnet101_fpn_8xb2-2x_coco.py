# Mask R-CNN, TiedResNet-101 (Tied Block Convolution), 2x schedule
_base_ = './mask-rcnn_tiedresnet50_fpn_8xb2-2x_coco.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(
            checkpoint='work_dirs/backbones/tiedresnet101_8xb32_in1k.pth')))

paper_reference = dict(
    source='Tied Block Convolution, Table 1 (backbone)', params=39.4e6)
