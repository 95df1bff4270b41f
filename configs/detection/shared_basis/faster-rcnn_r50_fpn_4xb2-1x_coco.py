# Faster R-CNN, ResNet-50: the baseline of Learning Deeply Shared Filter Bases,
# Table 4, on the paper's schedule. The ResNet-101 and shared-basis configs of
# this folder inherit it.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/schedule_1x_4xb2.py',
    '../_base_/default_runtime.py',
]

# Table 4 counts the baselines' trainable parameters, without the frozen stem
# and first stage (0.22M), and all parameters of the -Shared models.
paper_reference = dict(
    source='Learning Deeply Shared Filter Bases, Table 4',
    params=41.53e6,
    flops=None,
    input_shape=(3, 800, 1333))
