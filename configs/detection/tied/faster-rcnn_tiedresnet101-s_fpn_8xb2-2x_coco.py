# Faster R-CNN, TiedResNet-101-S (Tied Block Convolution), 2x schedule
_base_ = './faster-rcnn_tiedresnet50-s_fpn_8xb2-2x_coco.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(
            checkpoint='work_dirs/backbones/tiedresnet101-s_8xb32_in1k.pth')))

paper_reference = dict(
    source='Tied Block Convolution, Table 1 (backbone)', params=24.0e6)
