# Faster R-CNN, TiedResNet-50 (Tied Block Convolution), 2x schedule
_base_ = './faster-rcnn_r50_fpn_8xb2-2x_coco.py'

model = dict(
    backbone=dict(
        type='TiedResNet',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/backbones/tiedresnet50_8xb32_in1k.pth')))

paper_reference = dict(params=22.0e6)
