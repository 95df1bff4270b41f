# Mask R-CNN, ResNet-50 with global context blocks (GCNet, ratio 1/4, after the
# last convolution of every block of stages 2-4): Tied Block Convolution, Table
# 4, as mmdet's gcnet/mask-rcnn_r50-gcb-r4-c3-c5_fpn_1x_coco.py
_base_ = './mask-rcnn_r50_fpn_8xb2-1x_coco.py'

model = dict(
    backbone=dict(plugins=[
        dict(
            cfg=dict(type='ContextBlock', ratio=1. / 4),
            stages=(False, True, True, True),
            position='after_conv3')
    ]))
