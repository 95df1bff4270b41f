# mmdet's COCO instance segmentation data (CocoMetric's ann_file and metric
# inherited); the test set is also evaluated per occlusion ratio (Tied Block
# Convolution, eq. 5 and Figure 7). COCO's masks are visible parts that
# barely overlap, so the occlusion is measured on the instances' boxes.
_base_ = 'mmdet::_base_/datasets/coco_instance.py'

test_evaluator = dict(type='CocoOcclusionRatioMetric', instance_shape='box')
