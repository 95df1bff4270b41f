# RetinaNet, ResNet50-Shared‡ (Learning Deeply Shared Filter Bases, Table 4): the first two
# convolutions of each block are shared filter bases.
_base_ = './retinanet_r50-shared_fpn_4xb2-1x_coco.py'

model = dict(
    backbone=dict(
        share='conv1_conv2',
        init_cfg=dict(
            checkpoint='work_dirs/backbones/resnet50-shared2_8xb32_in1k.pth')))

paper_reference = dict(params=30.67e6)
