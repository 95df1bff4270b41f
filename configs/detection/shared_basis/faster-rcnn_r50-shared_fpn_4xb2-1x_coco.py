# Faster R-CNN, ResNet50-Shared (Learning Deeply Shared Filter Bases, Table 4):
# the 3 x 3 convolutions of the blocks of a residual group share a filter
# basis, trained with the orthogonality regularization of eq. 7
# (configs/_base_/orthogonality_regularization.py).
_base_ = [
    './faster-rcnn_r50_fpn_4xb2-1x_coco.py',
    '../../_base_/orthogonality_regularization.py',
]

model = dict(
    backbone=dict(
        type='SharedBasisResNet',
        basis_cfg=dict(share='conv2'),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/backbones/resnet50-shared_8xb32_in1k.pth')))

paper_reference = dict(params=36.70e6)
