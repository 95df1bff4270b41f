# Mask R-CNN, ResNet101-Shared (Learning Deeply Shared Filter Bases, Table 4)
_base_ = './mask-rcnn_r50-shared_fpn_4xb2-1x_coco.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(
            checkpoint='work_dirs/backbones/resnet101-shared_8xb32_in1k.pth')))

paper_reference = dict(params=48.31e6)
