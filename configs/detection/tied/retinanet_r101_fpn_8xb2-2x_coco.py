# RetinaNet, ResNet-101, 2x schedule (baseline of Tied Block Convolution)
_base_ = './retinanet_r50_fpn_8xb2-2x_coco.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))

paper_reference = dict(
    source='Tied Block Convolution, Table 1 (backbone)', params=44.6e6)
