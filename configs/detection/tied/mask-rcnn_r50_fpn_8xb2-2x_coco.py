# Mask R-CNN, ResNet-50, on mmdet's 2x schedule (24 epochs, lr / 10 at epochs
# 16 and 22, 8 GPUs x 2 images, lr 0.02), the schedule of the Tied Block
# Convolution paper's detection results. The ResNet-101 and TiedResNet configs
# of this folder inherit it.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_2x.py',
    '../_base_/default_runtime.py',
]

# Tied Block Convolution gives the sizes of the detectors' backbones as those
# of its ImageNet models (classifier included).
paper_reference = dict(
    source='Tied Block Convolution, Table 2 (backbone)',
    params=25.6e6,
    flops=None,
    input_shape=(3, 800, 1333),
    part='backbone')
