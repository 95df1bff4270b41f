# Mask R-CNN, TiedResNet-50-S, on Cityscapes (Tied Block Convolution, Table 2),
# from the COCO Mask R-CNN of
# configs/detection/tied/mask-rcnn_tiedresnet50-s_fpn_8xb2-2x_coco.py
_base_ = './mask-rcnn_tiedresnet50_fpn_1x_cityscapes.py'

model = dict(backbone=dict(base_width=18, split_blocks=(1, 2, 2, 2)))

load_from = 'work_dirs/mask-rcnn_tiedresnet50-s_fpn_8xb2-2x_coco/epoch_24.pth'

paper_reference = dict(params=13.9e6)
