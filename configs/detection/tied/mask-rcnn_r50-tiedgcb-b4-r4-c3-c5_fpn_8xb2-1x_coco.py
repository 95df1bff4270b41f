# Mask R-CNN, ResNet-50 with TiedGCB blocks (B = 4) where the GCB config has
# global context blocks: Tied Block Convolution, Table 4
_base_ = './mask-rcnn_r50-gcb-r4-c3-c5_fpn_8xb2-1x_coco.py'

model = dict(
    backbone=dict(plugins=[
        dict(
            cfg=dict(type='TiedGCB', ratio=1. / 4, blocks=4),
            stages=(False, True, True, True),
            position='after_conv3')
    ]))
