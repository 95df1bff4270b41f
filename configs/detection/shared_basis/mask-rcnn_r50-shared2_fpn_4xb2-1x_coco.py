# Mask R-CNN, ResNet50-Shared‡ (Learning Deeply Shared Filter Bases, Table 4):
# the 3 x 3 and the last 1 x 1 convolution of each block are shared filter
# bases, as in the authors' code (ResNet50_Shared), whose released weights
# convert into it (share='conv1_conv2' builds the paper sentence's reading
# instead).
_base_ = './mask-rcnn_r50-shared_fpn_4xb2-1x_coco.py'

model = dict(
    backbone=dict(
        basis_cfg=dict(share='conv2_conv3'),
        init_cfg=dict(
            checkpoint='work_dirs/backbones/resnet50-shared2_8xb32_in1k.pth')))

paper_reference = dict(params=37.10e6)
