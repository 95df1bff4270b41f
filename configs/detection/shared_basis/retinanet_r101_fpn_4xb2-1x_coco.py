# RetinaNet, ResNet-101: the baseline of Learning Deeply Shared Filter Bases,
# Table 4
_base_ = './retinanet_r50_fpn_4xb2-1x_coco.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))

paper_reference = dict(params=56.74e6)
