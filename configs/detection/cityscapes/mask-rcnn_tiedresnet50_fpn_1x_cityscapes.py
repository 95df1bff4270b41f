# Mask R-CNN, TiedResNet-50, on Cityscapes (Tied Block Convolution, Table 2).
# As mmdet's ResNet-50 config, it starts from the COCO Mask R-CNN of its
# backbone: the one
# configs/detection/tied/mask-rcnn_tiedresnet50_fpn_8xb2-2x_coco.py trains
_base_ = './mask-rcnn_r50_fpn_1x_cityscapes.py'

model = dict(backbone=dict(type='TiedResNet'))

load_from = 'work_dirs/mask-rcnn_tiedresnet50_fpn_8xb2-2x_coco/epoch_24.pth'

paper_reference = dict(params=22.0e6)
