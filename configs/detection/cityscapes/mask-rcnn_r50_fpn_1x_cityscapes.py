# Mask R-CNN, ResNet-50, on Cityscapes (Tied Block Convolution, Table 2):
# mmdet's config, with AP per occlusion ratio beside its COCO and Cityscapes
# metrics; the TiedResNet configs of this folder inherit it
_base_ = 'mmdet::cityscapes/mask-rcnn_r50_fpn_1x_cityscapes.py'

custom_imports = dict(imports=['sharedbasis_mm'], allow_failed_imports=False)

# The COCO-format annotations that mmdet's converter
# (tools/dataset_converters/cityscapes.py) writes hold the instances' visible
# parts, as COCO's: the occlusion is measured on their boxes. The metric is
# CocoMetric (bbox and segm) plus its bins; CityScapesMetric stays beside it.
_coco, _cityscapes = _base_.val_evaluator
test_evaluator = [
    dict(_coco, type='CocoOcclusionRatioMetric', instance_shape='box'),
    _cityscapes
]

# the paper's backbone (ImageNet classifier, fc included)
paper_reference = dict(
    source='Tied Block Convolution, Table 2 (backbone)',
    params=25.6e6,
    flops=None,
    input_shape=(3, 1024, 2048),
    part='backbone')
