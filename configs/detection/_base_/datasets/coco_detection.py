# mmdet's COCO detection data; the test set is also evaluated per occlusion
# ratio (paper 003, eq. 5 and Figure 7).
_base_ = 'mmdet::_base_/datasets/coco_detection.py'

test_evaluator = dict(type='OcclusionRatioMetric')
