# Faster R-CNN with TiedResNeSt50-S (Tied Block Convolution, Figure 4c):
# mmdet's ResNeSt-50 config with what ./_base_/tiedresnest50-s.py changes
_base_ = [
    'mmdet::resnest/faster-rcnn_s50_fpn_syncbn-backbone+head_ms-range-1x_coco.py',
    './_base_/tiedresnest50-s.py'
]

model = dict(backbone=_base_.tied_backbone)
test_evaluator = _base_.occlusion_metric
