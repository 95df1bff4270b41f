# Mask R-CNN, ResNet-50, on mmdet's 1x schedule (12 epochs, lr / 10 at epochs 8
# and 11, 8 GPUs x 2 images, lr 0.02): the first row of Tied Block Convolution,
# Table 4, whose Mask R-CNN results (37.3 box AP, 34.2 mask AP, GCB: 38.9 /
# 35.5) are mmdet's 1x model zoo results. The GCB and TiedGCB configs inherit
# it.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py',
]
